"""The API process's composition root: ``create_app()`` reads settings, builds the engine,
repositories, Temporal connection (with the payload codec), gateway adapter and rate limits
once, hands them to the routes, and wraps the app in its edge middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.deps import Container, RateLimits
from api.errors import install_error_handlers
from api.metrics import ApiMetrics, HttpMetrics
from api.middleware import RequestHygiene, SecurityHeaders, codec_cors
from api.request_context import RequestContext
from api.routes import (
    admin_page,
    analytics,
    api_keys,
    codec,
    exchange_rates,
    fraud,
    health,
    listings,
    payment_methods,
    payments,
    reconciliation,
    refunds,
    webhooks,
)
from api.routes import metrics as metrics_routes
from api.sessions import SessionSigner
from payments.config import Settings, get_settings
from payments.db.database import Database
from payments.db.engine import create_db_engine
from payments.gateway.braintree_gateway import build_braintree_gateway
from payments.heap import freeze_startup_heap
from payments.logging import configure_logging
from payments.orders.client import build_order_service
from payments.service import PaymentService
from payments.tracing import configure_tracing
from workflows.client import PaymentWorkflows, TemporalConnection

DESCRIPTION = """
Payments and refunds, each run to the end as a durable Temporal workflow.

* `POST /initiate-payment` starts a payment (`pending`); its workflow checks fraud, charges
  through the gateway and records `success` or `failure`, announced on Kafka `payment_status`.
* `POST /refund` reserves an amount of a successful payment and starts its refund workflow.
* Send an `Idempotency-Key` header on POSTs: a repeat returns the first result.
* Every endpoint but `/healthz`, `/readyz`, the docs and the gateway's webhook needs
  `Authorization: Bearer <API key>`: a `checkout` key acts for one merchant, an `admin` key
  for the platform.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = create_db_engine(settings.database)
    db = Database(engine)
    temporal = TemporalConnection.for_settings(settings)
    workflows = PaymentWorkflows(temporal, settings.temporal.task_queue, settings.policy)
    # The codec endpoint serves the very codec the API's own client encrypts with.
    payload_codec = temporal.payload_codec
    assert payload_codec is not None  # for_settings always sets one
    orders = build_order_service(settings.orders)
    container = Container(
        settings=settings,
        db=db,
        service=PaymentService(db, workflows, settings.policy, settings.auth, orders),
        workflows=workflows,
        gateway=build_braintree_gateway(settings.gateway),
        rate_limits=RateLimits(
            settings.api.rate_limit,
            settings.api.unauthenticated_rate_limit,
            settings.api.rate_limit_storage_uri,
        ),
        payload_codec=payload_codec,
        sessions=SessionSigner(settings.api.session_secret),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if orders is not None:
            await orders.aclose()
        engine.dispose()

    app = FastAPI(
        title="Payment Service",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.container = container
    app.state.metrics = metrics = ApiMetrics(db)
    install_error_handlers(app)
    for module in (
        payments,
        refunds,
        payment_methods,
        listings,
        webhooks,
        api_keys,
        exchange_rates,
        reconciliation,
        codec,
        health,
        metrics_routes,
        analytics,
        fraud,
        admin_page,
    ):
        app.include_router(module.router)
    # Outermost first: every answer gets the security headers, including the edge's own
    # refusals; the codec's CORS answers preflights before anything else looks at them.
    app.add_middleware(codec_cors, origins=settings.api.cors_origins)
    app.add_middleware(RequestHygiene, max_body_bytes=settings.api.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(HttpMetrics, metrics=metrics)  # the edge's refusals are counted too
    # Outermost: the edge's refusals carry the request's id too.
    app.add_middleware(RequestContext)
    return app


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory api.main:app_factory``."""
    settings = get_settings()
    configure_logging(settings.log, process="api")
    configure_tracing(settings.tracing, process="api")
    app = create_app(settings)
    freeze_startup_heap()
    return app
