"""The worker process's composition root: ``python -m workers.payment_worker``.

Reads settings, builds the database engine, the braintree gateway, the Kafka producer and the
Temporal client once, injects them into the activity classes, makes sure the reconciliation
schedule exists, and runs the workflows on the task queue until SIGINT/SIGTERM; then it stops
polling, lets the activities it runs finish (up to TEMPORAL_GRACEFUL_SHUTDOWN_SECONDS) and
exits.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import structlog
import temporalio.activity
from aiokafka import AIOKafkaProducer
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.events import EventActivities
from activities.fraud import FraudActivities
from activities.gateway import GatewayActivities
from activities.ledger import LedgerActivities
from activities.orders import OrderActivities
from activities.reconciliation import ReconciliationActivities
from payments.config import Settings
from payments.crypto import build_token_cipher
from payments.db.database import Database
from payments.db.engine import create_db_engine
from payments.events.publisher import EventPublisher, KafkaEventPublisher
from payments.fraud.model import LearnedScore
from payments.gateway.braintree_gateway import build_braintree_gateway
from payments.gateway.types import PaymentGateway
from payments.orders.client import OrderService, build_order_service
from payments.retrying import retrying
from workers.log_context import ActivityLogContext
from workers.process import run_process
from workflows.client import PaymentWorkflows, TemporalConnection
from workflows.connection import temporal_connect_options
from workflows.namespace_setup import missing_search_attributes
from workflows.payment import PaymentWorkflow
from workflows.payment_methods import RemovePaymentMethodWorkflow, VaultPaymentMethodWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.refund import RefundWorkflow

log = structlog.get_logger(__name__)

# Sync activities (database, braintree SDK) run here; sized above the number of concurrent
# activities so that none waits for a thread.
ACTIVITY_THREADS = 32


WORKFLOWS = [
    PaymentWorkflow,
    RefundWorkflow,
    VaultPaymentMethodWorkflow,
    RemovePaymentMethodWorkflow,
    ReconciliationWorkflow,
]

# The sandbox still runs each workflow in isolation and refuses non-deterministic calls, but
# imports the modules the workflows use once, outside it, instead of again for every run that
# starts on this worker: that import was a fifth of the worker's CPU per payment. Our modules
# hold no state a run could change (the replay tests run with the same runner).
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
)


def activity_methods(*instances: object) -> list[Callable[..., Any]]:
    """Every ``@activity.defn`` method of the given activity class instances, bound to them:
    what the worker registers, so that an activity is a method in its class and nothing
    more. An instance without any is a wiring mistake and fails here, at start-up."""
    methods: list[Callable[..., Any]] = []
    for instance in instances:
        found = [
            getattr(instance, name)
            for name, function in inspect.getmembers(type(instance), inspect.isfunction)
            # The SDK has no public "is this an activity?" (temporalio/sdk-python#758); this
            # is the check its worker makes when it registers a callable.
            if temporalio.activity._Definition.from_callable(function) is not None
        ]
        if not found:
            raise TypeError(f"{type(instance).__name__} has no @activity.defn method")
        methods.extend(found)
    return methods


def build_activities(
    client: Client,
    settings: Settings,
    *,
    publisher: EventPublisher,
    gateway: PaymentGateway,
    db: Database,
    orders: OrderService | None,
) -> list[Callable[..., Any]]:
    """Every activity, with its dependencies injected (shared with the workflow tests)."""
    gateway_activities = GatewayActivities(
        gateway,
        db.payment_methods,
        build_token_cipher(settings),
        default_merchant_id=settings.auth.default_merchant_id,
    )
    instances: list[object] = [
        LedgerActivities(db, default_merchant_id=settings.auth.default_merchant_id),
        FraudActivities(
            db,
            settings.policy,
            describe=gateway_activities.describe_payment_method,
            model=LearnedScore.load(settings.policy.fraud.model_path),
        ),
        gateway_activities,
        EventActivities(publisher),
        ReconciliationActivities(
            db,
            gateway,
            PaymentWorkflows(
                TemporalConnection.of(client), settings.temporal.task_queue, settings.policy
            ),
        ),
        # Even without an Order Service (``orders`` None): a payment's input decides whether
        # it updates its order, and this worker may be the one that runs it.
        OrderActivities(orders),
    ]
    return activity_methods(*instances)


def build_worker(
    client: Client,
    settings: Settings,
    *,
    publisher: EventPublisher,
    executor: ThreadPoolExecutor,
    orders: OrderService | None,
) -> Worker:
    db = Database(create_db_engine(settings.database))
    return Worker(
        client,
        task_queue=settings.temporal.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
        activities=build_activities(
            client,
            settings,
            publisher=publisher,
            gateway=build_braintree_gateway(settings.gateway),
            db=db,
            orders=orders,
        ),
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
        interceptors=[ActivityLogContext()],
        # Leaving the worker's context (on SIGTERM) waits this long for running activities.
        graceful_shutdown_timeout=timedelta(seconds=settings.temporal.graceful_shutdown_seconds),
    )


async def _connect_with_retry(settings: Settings, stop: asyncio.Event) -> Client | None:
    """Temporal may still be starting (make run starts everything together). The options are
    those of the API and the consumer (same payload key ring), so the worker decodes what
    they encode; a misconfiguration (ValueError) is raised at once, not retried."""
    options = temporal_connect_options(settings)

    def unreachable(exc: Exception) -> bool:
        if isinstance(exc, RuntimeError):
            log.warning(
                "temporal not reachable yet", address=settings.temporal.address, error=str(exc)
            )
            return True
        return False

    runtime = _runtime(settings.temporal.metrics_address)
    return await retrying(
        lambda: Client.connect(**options, runtime=runtime), on=unreachable, stop=stop
    )


def _runtime(metrics_address: str | None) -> Runtime:
    """The SDK's runtime: the default one, or one that serves Prometheus metrics (the SDK's
    and those recorded through its meter, activities/metrics.py) on ``metrics_address``."""
    if metrics_address is None:
        return Runtime.default()
    return Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=metrics_address))
    )


async def _start_producer(settings: Settings, stop: asyncio.Event) -> AIOKafkaProducer | None:
    async def started() -> AIOKafkaProducer:
        producer = KafkaEventPublisher.build_producer(settings.kafka)
        try:
            await producer.start()
        except Exception as exc:  # aiokafka raises KafkaConnectionError and friends
            log.warning("kafka not reachable yet", error=type(exc).__name__)
            await producer.stop()
            raise
        return producer

    return await retrying(started, on=Exception, stop=stop)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    client = await _connect_with_retry(settings, stop)
    producer = await _start_producer(settings, stop)
    if client is None or producer is None:
        return
    missing = await missing_search_attributes(client, settings.temporal.namespace)
    if missing:
        # Every payment the API starts would be refused by Temporal: stop before any is.
        log.error(
            "search attributes not registered: run `payments search-attributes`",
            namespace=settings.temporal.namespace,
            missing=missing,
        )
        await producer.stop()
        raise SystemExit(1)
    publisher = KafkaEventPublisher(producer, settings.kafka)
    orders = build_order_service(settings.orders)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(
            client, settings, publisher=publisher, executor=executor, orders=orders
        )
        await PaymentWorkflows(
            TemporalConnection.of(client), settings.temporal.task_queue, settings.policy
        ).ensure_reconciliation_schedule()
        log.info(
            "worker started",
            task_queue=settings.temporal.task_queue,
            reconciliation_every_seconds=settings.policy.reconciliation_interval_seconds,
        )
        async with worker:
            await stop.wait()
            log.info(
                "worker stopping",
                graceful_shutdown_seconds=settings.temporal.graceful_shutdown_seconds,
            )
        log.info("worker stopped")
    if orders is not None:
        await orders.aclose()
    await producer.stop()


def main() -> None:
    run_process("worker", run)


if __name__ == "__main__":
    main()
