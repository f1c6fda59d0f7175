"""The Kafka consumer process's composition root: ``python -m workers.consumer``.

Reads ``payment_initiation`` and starts one payment per message, and ``payment_status`` for
updates from other producers (a hint that makes a pending payment check the gateway now).
Offsets are committed only after a message has been handled, so a crash re-delivers it; the
message's idempotency key makes the re-delivery start nothing new. A message that fails for
an infrastructure reason (database or Temporal down) is retried, with backoff, before the
next one is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from payments.config import Settings, get_settings
from payments.db.engine import create_db_engine
from payments.db.repository import PaymentRepository
from payments.events import topics
from payments.events.initiation import MessageRef, handle_initiation
from payments.events.status_updates import handle_status_update
from payments.logging import configure_logging
from payments.orders.client import (
    HttpOrderService,
    OrderService,
    create_order_service_http_client,
)
from payments.service import PaymentService
from workflows.client import PaymentWorkflows, TemporalConnection

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Handlers:
    service: PaymentService
    repository: PaymentRepository
    workflows: PaymentWorkflows
    initiation_topic: str

    async def handle(self, message: ConsumerRecord) -> None:
        if message.topic == self.initiation_topic:
            ref = MessageRef(message.topic, message.partition, message.offset)
            await handle_initiation(self.service, ref, message.value)
        else:
            await handle_status_update(
                self.repository, self.workflows, list(message.headers or ()), message.value
            )


def build_handlers(settings: Settings, orders: OrderService | None) -> Handlers:
    repository = PaymentRepository(create_db_engine(settings.database))
    workflows = PaymentWorkflows(
        TemporalConnection(settings.temporal.address, settings.temporal.namespace),
        settings.temporal.task_queue,
        settings.policy,
    )
    return Handlers(
        service=PaymentService(repository, workflows, settings.policy, orders),
        repository=repository,
        workflows=workflows,
        initiation_topic=settings.kafka.topic(topics.PAYMENT_INITIATION),
    )


async def _handle_until_done(
    handlers: Handlers, message: ConsumerRecord, stop: asyncio.Event
) -> bool:
    delay = 0.5
    while not stop.is_set():
        try:
            await handlers.handle(message)
            return True
        except Exception as exc:  # infrastructure: keep the message, try again
            log.warning("message handling failed; retrying", topic=message.topic, error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 10.0)
    return False


async def run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    order_client = (
        create_order_service_http_client(settings.orders) if settings.orders.url else None
    )
    orders = (
        HttpOrderService(order_client, settings.orders.url)
        if order_client is not None and settings.orders.url
        else None
    )
    handlers = build_handlers(settings, orders)
    topic = settings.kafka.topic(topics.PAYMENT_INITIATION)
    consumer = AIOKafkaConsumer(
        topic,
        settings.kafka.topic(topics.PAYMENT_STATUS),
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=settings.kafka.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    delay = 0.5
    while not stop.is_set():
        try:
            await consumer.start()
            break
        except Exception as exc:
            log.warning("kafka not reachable yet", error=type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    else:
        return
    log.info("consumer started", topic=topic, group=settings.kafka.consumer_group)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=50)
            for partition, messages in batches.items():
                for message in messages:
                    if not await _handle_until_done(handlers, message, stop):
                        return  # stopping: the offset stays uncommitted, it will come again
                    await consumer.commit(
                        {TopicPartition(partition.topic, partition.partition): message.offset + 1}
                    )
    finally:
        await consumer.stop()
        if order_client is not None:
            await order_client.aclose()
        log.info("consumer stopped")


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log, process="consumer")
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
