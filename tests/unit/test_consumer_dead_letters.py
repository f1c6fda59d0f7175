"""The consumer dead-letters a message it can never handle and goes on with the next one.

In-process: the real Handlers and DeadLetters over a producer that records what it is asked
to send (the broker itself is in tests/e2e/test_security_e2e.py)."""

from __future__ import annotations

from typing import Any, cast

from aiokafka.structs import ConsumerRecord

from payments.config import KafkaSettings
from payments.db.repositories.payments import PaymentRepository
from payments.events.dead_letters import DeadLetters
from payments.service import PaymentService
from workers.consumer import Handlers
from workflows.client import PaymentWorkflows


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, dict[str, bytes]]] = []

    async def send_and_wait(
        self, topic: str, value: bytes | None, *, key: bytes | None, headers: Any
    ) -> None:
        self.sent.append((topic, value, dict(headers)))


def handlers(producer: RecordingProducer) -> Handlers:
    # A message that is not JSON is refused before the service, the database or Temporal
    # is asked anything: nothing else is needed.
    return Handlers(
        service=cast(PaymentService, None),
        payments=cast(PaymentRepository, None),
        workflows=cast(PaymentWorkflows, None),
        dead_letters=DeadLetters(cast(Any, producer), KafkaSettings()),
        initiation_topic="payment_initiation",
        default_merchant_id="default",
        retry_max_seconds=1.0,
    )


def message(value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="payment_initiation",
        partition=0,
        offset=7,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=value,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=len(value),
        headers=[],
    )


async def test_a_message_that_is_not_json_is_dead_lettered_and_handling_returns() -> None:
    producer = RecordingProducer()
    await handlers(producer).handle(message(b"{not json"))
    [(topic, value, headers)] = producer.sent
    assert topic == "payment_initiation.dlq"
    assert value == b"{not json"
    assert headers["dlq.error.type"] == b"not_json"
    assert headers["dlq.original.offset"] == b"7"
