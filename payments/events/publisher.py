"""Publishing JSON events to Kafka with aiokafka."""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer

from payments.config import KafkaSettings
from payments.events.connection import kafka_client_options
from payments.tracing import trace_headers

PRODUCER = "payment-service"


class EventPublisher(Protocol):
    async def publish(self, topic: str, key: str, event: dict[str, Any]) -> None:
        """Deliver ``event`` to ``topic`` (name before prefixing), acknowledged by the broker,
        or raise. Safe to repeat: consumers dedupe by event_id."""
        ...


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


class KafkaEventPublisher:
    """Waits for the broker's acknowledgement (acks=all) of every message; a failure raises,
    so the calling activity is retried by Temporal until the broker is back."""

    def __init__(self, producer: AIOKafkaProducer, settings: KafkaSettings) -> None:
        self._producer = producer
        self._settings = settings

    @staticmethod
    def build_producer(settings: KafkaSettings) -> AIOKafkaProducer:
        """Not started. Raises KafkaMisconfigured (a ValueError) when the connection security
        settings do not fit together."""
        return AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            acks="all",
            enable_idempotence=settings.enable_idempotence,
            # Give up on one attempt quickly; Temporal's retry policy does the waiting.
            request_timeout_ms=10_000,
            linger_ms=5,
            **kafka_client_options(settings),
        )

    async def publish(self, topic: str, key: str, event: dict[str, Any]) -> None:
        headers = [
            # Lets our own consumer of payment_status tell our events from external ones.
            ("producer", PRODUCER.encode()),
            ("event_type", str(event["event_type"]).encode()),
            ("event_id", str(event["event_id"]).encode()),
            # The payment's trace continues in whoever consumes the event.
            *trace_headers(),
        ]
        await self._producer.send_and_wait(
            self._settings.topic(topic), encode(event), key=key.encode(), headers=headers
        )
