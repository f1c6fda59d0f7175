"""The Kafka consumer process's composition root: ``python -m workers.consumer``.

Reads ``payment_initiation`` and starts one payment per message, and ``payment_status`` for
updates from other producers (a hint that makes a pending payment check the gateway now).

Every message ends one of three ways, and only then is its offset committed:
- handled (the payment started, or was found by its idempotency key);
- rejected — it can never succeed (see payments/events/initiation.py) — and published to
  ``payment_initiation.dlq`` with the reason, so it never blocks the messages behind it;
- an infrastructure error (database, Temporal, the Order Service unreachable): the same
  message is tried again with jittered exponential backoff (stamina), for as long as it takes;
  stopping the process leaves it uncommitted, so it comes again.
A crash re-delivers what was not committed; the idempotency key makes that start nothing new.
So does a group rebalance (a broker restart, a consumer joining or leaving) that refuses a
commit: the loop goes on, and the message comes again to whoever holds its partition.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import structlog
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from temporalio.service import RPCError

from payments.config import Settings
from payments.db.database import Database
from payments.db.engine import create_db_engine
from payments.db.repositories.payments import PaymentRepository
from payments.errors import ServiceUnavailable
from payments.events import topics
from payments.events.closing import stop_consumer
from payments.events.connection import kafka_client_options
from payments.events.dead_letters import DeadLetters
from payments.events.initiation import MessageRef, Rejection, handle_initiation
from payments.events.publisher import KafkaEventPublisher
from payments.events.status_updates import handle_status_update
from payments.orders.client import OrderService, build_order_service
from payments.retrying import retrying
from payments.service import PaymentService
from payments.tracing import SERVICE, context_of
from workers.consumer_metrics import ConsumerMetrics
from workers.process import run_process
from workflows.client import PaymentWorkflows, TemporalConnection

_tracer = trace.get_tracer(f"{SERVICE}.consumer")
log = structlog.get_logger(__name__)

T = TypeVar("T")
Handle = Callable[[ConsumerRecord], Coroutine[Any, Any, None]]


def is_transient(exc: Exception) -> bool:
    """Infrastructure that may come back: worth trying the same message again. Anything else
    (a rejected message, a bug) would fail the same way forever."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        ServiceUnavailable  # Temporal or the Order Service unreachable (NotSent included)
        | OperationalError  # the database unreachable or locked
        | InterfaceError
        | PoolTimeoutError
        | RPCError  # Temporal answered with an error status
        | KafkaError  # the broker, while publishing to the dead-letter topic
        | httpx.TransportError
        | OSError
        | TimeoutError,
    )


@dataclass(frozen=True)
class Handlers:
    service: PaymentService
    payments: PaymentRepository
    workflows: PaymentWorkflows
    dead_letters: DeadLetters
    initiation_topic: str
    default_merchant_id: str
    retry_max_seconds: float

    async def handle(self, message: ConsumerRecord) -> None:
        """Returns once the message may be committed; raises only while stopping."""
        if message.topic != self.initiation_topic:
            await self._status_update(message)
            return
        # The payment's trace begins with the producer's, when its headers carry one.
        with _tracer.start_as_current_span(
            f"{message.topic} process",
            context=context_of(message.headers or ()),
            kind=SpanKind.CONSUMER,
        ):
            await self._initiation(message)

    async def _initiation(self, message: ConsumerRecord) -> None:
        ref = MessageRef(message.topic, message.partition, message.offset)
        try:
            outcome = await self._with_retries(
                lambda: handle_initiation(
                    self.service, ref, message.value, default_merchant_id=self.default_merchant_id
                ),
                ref,
            )
        except Exception as exc:
            # A bug, not the infrastructure: it would fail the same way forever and stop
            # every message behind this one. Dead-letter it, loudly.
            log.exception("payment_initiation message failed", offset=ref.offset)
            outcome = Rejection("internal_error", f"unexpected {type(exc).__name__}")
        if isinstance(outcome, Rejection):
            await self._with_retries(
                lambda: self.dead_letters.publish(ref, message.key, message.value, outcome), ref
            )
            log.warning(
                "payment_initiation message dead-lettered",
                partition=ref.partition,
                offset=ref.offset,
                dlq=self.dead_letters.topic,
                error_type=outcome.error_type,
            )

    async def _status_update(self, message: ConsumerRecord) -> None:
        ref = MessageRef(message.topic, message.partition, message.offset)
        try:
            await self._with_retries(
                lambda: handle_status_update(
                    self.payments, self.workflows, list(message.headers or ()), message.value
                ),
                ref,
            )
        except Exception as exc:
            # A hint that cannot be acted on is dropped: the workflow's own timers and the
            # reconciliation still check the gateway.
            log.warning("payment_status hint dropped", offset=ref.offset, error=type(exc).__name__)

    async def _with_retries(self, operation: Callable[[], Awaitable[T]], ref: MessageRef) -> T:
        """Run ``operation``, again and again while it fails for an infrastructure reason
        (jittered exponential backoff up to retry_max_seconds, no limit on attempts);
        anything else propagates."""

        def transient(exc: Exception) -> bool:
            if is_transient(exc):
                log.warning(
                    "message handling failed; retrying",
                    topic=ref.topic,
                    partition=ref.partition,
                    offset=ref.offset,
                    error=type(exc).__name__,
                )
                return True
            return False

        return await retrying(operation, on=transient, wait_max=self.retry_max_seconds)


def build_handlers(
    settings: Settings,
    orders: OrderService | None,
    producer: AIOKafkaProducer,
    metrics: ConsumerMetrics | None = None,
) -> Handlers:
    db = Database(create_db_engine(settings.database))
    workflows = PaymentWorkflows(
        TemporalConnection.for_settings(settings),
        settings.temporal.task_queue,
        settings.policy,
    )
    return Handlers(
        service=PaymentService(db, workflows, settings.policy, settings.auth, orders),
        payments=db.payments,
        workflows=workflows,
        dead_letters=DeadLetters(
            producer,
            settings.kafka,
            published=metrics.dead_letters.inc if metrics is not None else None,
        ),
        initiation_topic=settings.kafka.topic(topics.PAYMENT_INITIATION),
        default_merchant_id=settings.auth.default_merchant_id,
        retry_max_seconds=settings.kafka.consumer_retry_max_seconds,
    )


class _AssignmentLogged(ConsumerRebalanceListener):  # type: ignore[misc]  # untyped aiokafka
    """Which partitions this consumer reads, logged at each rebalance: consumers of one group
    split the partitions between them, and an operator sees who reads what."""

    def __init__(self, metrics: ConsumerMetrics) -> None:
        self._metrics = metrics

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        log.info("partitions revoked", partitions=_named(revoked))
        self._metrics.forget(revoked)  # another consumer reports their lag now

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", partitions=_named(assigned))


def _named(partitions: set[TopicPartition]) -> list[str]:
    return sorted(f"{p.topic}[{p.partition}]" for p in partitions)


async def _started(client: AIOKafkaConsumer | AIOKafkaProducer, stop: asyncio.Event) -> bool:
    """Start a Kafka client, waiting for the broker (make run starts everything at once)."""

    async def start() -> bool:
        await client.start()
        return True

    return await retrying(start, on=Exception, stop=stop) is not None


async def run(settings: Settings, stop: asyncio.Event) -> None:
    orders = build_order_service(settings.orders)
    producer = KafkaEventPublisher.build_producer(settings.kafka)
    topic = settings.kafka.topic(topics.PAYMENT_INITIATION)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=settings.kafka.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka_client_options(settings.kafka),
    )
    metrics = ConsumerMetrics()
    consumer.subscribe(
        [topic, settings.kafka.topic(topics.PAYMENT_STATUS)], listener=_AssignmentLogged(metrics)
    )
    handlers = build_handlers(settings, orders, producer, metrics)
    # Served at once: a consumer still joining its group (or waiting for the broker) shows.
    metrics.serve(settings.kafka)
    if not await _started(producer, stop) or not await _started(consumer, stop):
        metrics.close()
        await producer.stop()
        return
    log.info("consumer started", topic=topic, group=settings.kafka.consumer_group)
    try:
        await consume(consumer, handlers.handle, metrics, stop)
    finally:
        metrics.close()
        await stop_consumer(consumer)
        await producer.stop()
        if orders is not None:
            await orders.aclose()
        log.info("consumer stopped")


async def consume(
    consumer: AIOKafkaConsumer,
    handle: Handle,
    metrics: ConsumerMetrics,
    stop: asyncio.Event,
) -> None:
    """Handle and commit message after message until ``stop`` is set."""
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=500, max_records=50)
        for partition, messages in batches.items():
            for message in messages:
                if not await _handled_unless_stopped(handle, message, stop):
                    return  # stopping: the offset stays uncommitted, it will come again
                if not await _committed(consumer, partition, message.offset + 1):
                    break  # the rest of this batch comes again too, from the committed offset
                metrics.handled.labels(partition.topic).inc()
        await metrics.observe_lag(consumer)


async def _committed(consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int) -> bool:
    """Commit ``offset``; False if the group rebalanced while the message was handled.

    A broker restart or a consumer joining or leaving the group rebalances it. The partition
    may then be another consumer's, or this one's again from its last committed offset:
    either way the message is read again, and its idempotency key (or event id) makes that
    change nothing. Failing here would stop intake for a routine event.
    """
    try:
        await consumer.commit({TopicPartition(partition.topic, partition.partition): offset})
    except (CommitFailedError, IllegalStateError) as exc:
        log.warning(
            "offset not committed: the group rebalanced; the message will be read again",
            topic=partition.topic,
            partition=partition.partition,
            offset=offset - 1,
            error=type(exc).__name__,
        )
        return False
    return True


async def _handled_unless_stopped(
    handle: Handle,
    message: ConsumerRecord,
    stop: asyncio.Event,
) -> bool:
    """Handle the message (retrying inside); False if a stop interrupted it first."""
    handling = asyncio.create_task(handle(message))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({handling, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if handling.done():
        handling.result()  # a bug surfaces here (and stops the process: it must be seen)
        return True
    handling.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await handling
    return False


def main() -> None:
    run_process("consumer", run)


if __name__ == "__main__":
    main()
