"""The dead-letter topic of ``payment_initiation``: where a message that can never start a
payment goes, so that it stops blocking the messages behind it on its partition.

The copy keeps the original key and value — with anything that looks like a card number
masked — and headers that say why and where it came from, so an operator can fix and replay
it: ``dlq.error.type``, ``dlq.error.message``, ``dlq.original.topic``,
``dlq.original.partition``, ``dlq.original.offset``, ``dlq.failed_at``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from payments.card_data import mask_card_numbers
from payments.config import KafkaSettings
from payments.events.initiation import MessageRef, Rejection
from payments.events.topics import PAYMENT_INITIATION_DLQ


def masked(value: bytes | None) -> bytes:
    """The value with card numbers masked; bytes that are not UTF-8 are kept as they are
    (surrogate escapes round-trip them)."""
    if value is None:
        return b""
    text = value.decode("utf-8", "surrogateescape")
    return mask_card_numbers(text).encode("utf-8", "surrogateescape")


class DeadLetters:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        settings: KafkaSettings,
        *,
        published: Callable[[], None] | None = None,
    ) -> None:
        self._producer = producer
        self.topic = settings.topic(PAYMENT_INITIATION_DLQ)
        self._published = published  # counts them (the consumer's metrics)

    async def publish(
        self, ref: MessageRef, key: bytes | None, value: bytes | None, rejection: Rejection
    ) -> None:
        """Acknowledged by the broker (acks=all) or raises: the caller commits the original
        message only after this returned."""
        headers = [
            ("dlq.error.type", rejection.error_type.encode()),
            ("dlq.error.message", mask_card_numbers(rejection.message)[:1000].encode()),
            ("dlq.original.topic", ref.topic.encode()),
            ("dlq.original.partition", str(ref.partition).encode()),
            ("dlq.original.offset", str(ref.offset).encode()),
            ("dlq.failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        await self._producer.send_and_wait(self.topic, masked(value), key=key, headers=headers)
        if self._published is not None:
            self._published()
