"""The API process's composition root: ``create_app()`` reads settings, builds the engine,
repository, Temporal connection and gateway adapter once, and hands them to the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.deps import Container
from api.errors import install_error_handlers
from api.routes import (
    admin,
    exchange_rates,
    health,
    payment_methods,
    payments,
    reconciliation,
    refunds,
    webhooks,
)
from payments.config import Settings, get_settings
from payments.db.engine import create_db_engine
from payments.db.repository import PaymentRepository
from payments.gateway.braintree_gateway import build_braintree_gateway
from payments.logging import configure_logging
from payments.orders.client import HttpOrderService, create_order_service_http_client
from payments.service import PaymentService
from workflows.client import PaymentWorkflows, TemporalConnection

DESCRIPTION = """
Payments and refunds, each run to the end as a durable Temporal workflow.

* `POST /initiate-payment` starts a payment (`pending`); its workflow checks fraud, charges
  through the gateway and records `success` or `failure`, announced on Kafka `payment_status`.
* `POST /refund` reserves an amount of a successful payment and starts its refund workflow.
* Send an `Idempotency-Key` header on POSTs: a repeat returns the first result.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = create_db_engine(settings.database)
    repository = PaymentRepository(engine)
    workflows = PaymentWorkflows(
        TemporalConnection(settings.temporal.address, settings.temporal.namespace),
        settings.temporal.task_queue,
        settings.policy,
    )
    order_client = (
        create_order_service_http_client(settings.orders) if settings.orders.url else None
    )
    orders = (
        HttpOrderService(order_client, settings.orders.url)
        if order_client is not None and settings.orders.url
        else None
    )
    container = Container(
        settings=settings,
        repository=repository,
        service=PaymentService(repository, workflows, settings.policy, orders),
        workflows=workflows,
        gateway=build_braintree_gateway(settings.gateway),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if order_client is not None:
            await order_client.aclose()
        engine.dispose()

    app = FastAPI(
        title="Payment Service",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.container = container
    install_error_handlers(app)
    for module in (
        payments,
        refunds,
        payment_methods,
        webhooks,
        admin,
        exchange_rates,
        reconciliation,
        health,
    ):
        app.include_router(module.router)
    return app


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory api.main:app_factory``."""
    settings = get_settings()
    configure_logging(settings.log, process="api")
    return create_app(settings)
