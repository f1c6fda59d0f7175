"""The worker process's composition root: ``python -m workers.payment_worker``.

Reads settings, builds the database engine, the braintree gateway, the Kafka producer and the
Temporal client once, injects them into the activity classes and runs PaymentWorkflow and
RefundWorkflow on the task queue until SIGINT/SIGTERM, then drains and exits.
"""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor

import structlog
from aiokafka import AIOKafkaProducer
from payments.gateway.braintree_gateway import build_braintree_gateway
from temporalio.client import Client
from temporalio.worker import Worker

from activities.events import EventActivities
from activities.fraud import FraudActivities
from activities.gateway import GatewayActivities
from activities.ledger import LedgerActivities
from payments.config import Settings, get_settings
from payments.db.engine import create_db_engine
from payments.db.repository import PaymentRepository
from payments.events.publisher import KafkaEventPublisher
from payments.logging import configure_logging
from workflows.payment import PaymentWorkflow
from workflows.refund import RefundWorkflow

log = structlog.get_logger(__name__)

# Sync activities (database, braintree SDK) run here; sized above the number of concurrent
# activities so that none waits for a thread.
ACTIVITY_THREADS = 32


def build_worker(
    client: Client,
    settings: Settings,
    *,
    publisher: KafkaEventPublisher,
    executor: ThreadPoolExecutor,
) -> Worker:
    repository = PaymentRepository(create_db_engine(settings.database))
    ledger = LedgerActivities(repository)
    fraud = FraudActivities(repository, settings.policy)
    gateway = GatewayActivities(build_braintree_gateway(settings.gateway))
    events = EventActivities(publisher)
    return Worker(
        client,
        task_queue=settings.temporal.task_queue,
        workflows=[PaymentWorkflow, RefundWorkflow],
        activities=[
            ledger.record_payment_pending,
            ledger.record_payment_outcome,
            ledger.refund_snapshot,
            ledger.plan_refund,
            ledger.record_refund_outcome,
            fraud.check_payment,
            gateway.charge,
            gateway.refund,
            events.publish_payment_status,
            events.publish_refund_status,
        ],
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
    )


async def _connect_with_retry(settings: Settings, stop: asyncio.Event) -> Client | None:
    """Temporal may still be starting (make run starts everything together)."""
    delay = 0.5
    while not stop.is_set():
        try:
            return await Client.connect(
                settings.temporal.address, namespace=settings.temporal.namespace
            )
        except RuntimeError as exc:
            log.warning(
                "temporal not reachable yet", address=settings.temporal.address, error=str(exc)
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    return None


async def _start_producer(settings: Settings, stop: asyncio.Event) -> AIOKafkaProducer | None:
    delay = 0.5
    while not stop.is_set():
        producer = KafkaEventPublisher.build_producer(settings.kafka)
        try:
            await producer.start()
            return producer
        except Exception as exc:  # aiokafka raises KafkaConnectionError and friends
            log.warning("kafka not reachable yet", error=type(exc).__name__)
            await producer.stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    return None


async def run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    client = await _connect_with_retry(settings, stop)
    producer = await _start_producer(settings, stop)
    if client is None or producer is None:
        return
    publisher = KafkaEventPublisher(producer, settings.kafka)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(client, settings, publisher=publisher, executor=executor)
        log.info("worker started", task_queue=settings.temporal.task_queue)
        async with worker:
            await stop.wait()
            log.info("worker stopping")
    await producer.stop()


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log, process="worker")
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
