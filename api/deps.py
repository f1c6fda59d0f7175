"""FastAPI dependencies: what a route may ask for, taken from the app's container — including
who is asking (the API key's Principal) and whether it may."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

import structlog
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from temporalio.converter import PayloadCodec

from api.sessions import SessionSigner
from payments.access import Principal
from payments.config import Settings
from payments.db import columns
from payments.db.database import Database
from payments.db.models import Role
from payments.db.repositories.access import AccessRepository
from payments.db.repositories.analytics import AnalyticsRepository
from payments.db.repositories.audit import AuditRepository
from payments.db.repositories.exchange_rates import ExchangeRateRepository
from payments.db.repositories.fraud import FraudRepository
from payments.db.repositories.payment_methods import PaymentMethodRepository
from payments.db.repositories.payments import PaymentRepository
from payments.db.repositories.reconciliation import ReconciliationRepository
from payments.db.repositories.refunds import RefundRepository
from payments.db.repositories.webhooks import WebhookReceiptRepository
from payments.errors import Forbidden, RateLimited, Unauthenticated
from payments.gateway.types import PaymentGateway
from payments.service import PaymentService
from workflows.client import PaymentWorkflows

T = TypeVar("T")


class RateLimits:
    """Moving-window limits per API key, and per client address for requests that fail to
    authenticate (key guessing). Counters in memory or a shared store (``limits`` URIs)."""

    def __init__(self, per_key: str, unauthenticated: str, storage_uri: str) -> None:
        uri = storage_uri if storage_uri.startswith("async+") else f"async+{storage_uri}"
        self._limiter = MovingWindowRateLimiter(storage_from_string(uri))
        self._per_key = parse_many(per_key)
        self._unauthenticated = parse_many(unauthenticated)

    async def check_key(self, key_id: str) -> None:
        await self._check(self._per_key, "key", key_id)

    async def check_failed_authentication(self, client: str) -> None:
        await self._check(self._unauthenticated, "unauthenticated", client)

    async def _check(self, items: list[RateLimitItem], *identifiers: str) -> None:
        for item in items:
            if not await self._limiter.hit(item, *identifiers):
                stats = await self._limiter.get_window_stats(item, *identifiers)
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimited(
                    f"rate limit of {item} exceeded; retry after {retry_after} s",
                    retry_after_seconds=retry_after,
                )


@dataclass(frozen=True)
class Container:
    """Everything the API's composition root (api/main.py) built for this process."""

    settings: Settings
    db: Database
    service: PaymentService
    workflows: PaymentWorkflows
    gateway: PaymentGateway
    rate_limits: RateLimits
    payload_codec: PayloadCodec
    sessions: SessionSigner


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def _repository(of: Callable[[Database], T]) -> Callable[[Request], T]:
    """A dependency on one of the process's repositories (the Database holds one of each)."""

    def repository(request: Request) -> T:
        return of(_container(request).db)

    return repository


def _service(request: Request) -> PaymentService:
    return _container(request).service


def _gateway(request: Request) -> PaymentGateway:
    return _container(request).gateway


def _workflows(request: Request) -> PaymentWorkflows:
    return _container(request).workflows


bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key: `Authorization: Bearer psk_…`. Roles: checkout (one merchant) "
    "and admin (the platform operator).",
)


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The key the request was made with; 401 (with WWW-Authenticate: Bearer) when it is
    missing, unknown or revoked, 429 when the key (or, failing authentication, the client
    address) is over its rate limit."""
    container = _container(request)
    principal = None
    if credentials is not None and credentials.scheme.lower() == "bearer":
        principal = await asyncio.to_thread(
            container.db.access.authenticate, credentials.credentials
        )
    if principal is None:
        client = request.client.host if request.client else "unknown"
        await container.rate_limits.check_failed_authentication(client)
        raise Unauthenticated(
            "a valid API key is required: Authorization: Bearer <key>"
            if credentials is None
            else "the API key is not valid (unknown, malformed or revoked)"
        )
    await container.rate_limits.check_key(principal.key_id)
    # Every later line of this request names who made it (the request's task only).
    structlog.contextvars.bind_contextvars(
        merchant_id=principal.merchant_id, key_id=principal.key_id
    )
    return principal


async def session_principal(container: Container, token: str) -> Principal | None:
    """The key a session cookie names (api/sessions.py), while it is valid and the key is
    active; None otherwise."""
    verified = container.sessions.verify(token)
    if verified is None:
        return None
    key = await asyncio.to_thread(container.db.access.get_key, verified.key_id)
    if key is None or key.revoked_at is not None:
        return None
    return Principal(key_id=key.key_id, role=Role(key.role), merchant_id=key.merchant_id)


async def require_admin(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden("this operation needs an admin key")
    return principal


ContainerDep = Annotated[Container, Depends(_container)]
ServiceDep = Annotated[PaymentService, Depends(_service)]
GatewayDep = Annotated[PaymentGateway, Depends(_gateway)]
WorkflowsDep = Annotated[PaymentWorkflows, Depends(_workflows)]
PaymentsDep = Annotated[PaymentRepository, Depends(_repository(lambda db: db.payments))]
AnalyticsDep = Annotated[AnalyticsRepository, Depends(_repository(lambda db: db.analytics))]
RefundsDep = Annotated[RefundRepository, Depends(_repository(lambda db: db.refunds))]
AuditDep = Annotated[AuditRepository, Depends(_repository(lambda db: db.audit))]
PaymentMethodsDep = Annotated[
    PaymentMethodRepository, Depends(_repository(lambda db: db.payment_methods))
]
ExchangeRatesDep = Annotated[
    ExchangeRateRepository, Depends(_repository(lambda db: db.exchange_rates))
]
ReconciliationDep = Annotated[
    ReconciliationRepository, Depends(_repository(lambda db: db.reconciliation))
]
WebhookReceiptsDep = Annotated[
    WebhookReceiptRepository, Depends(_repository(lambda db: db.webhook_receipts))
]
AccessDep = Annotated[AccessRepository, Depends(_repository(lambda db: db.access))]
FraudDep = Annotated[FraudRepository, Depends(_repository(lambda db: db.fraud))]
# Who is asking: any valid key (checkout or admin), or an admin key only.
PrincipalDep = Annotated[Principal, Depends(authenticate)]
AdminDep = Annotated[Principal, Depends(require_admin)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=columns.IDEMPOTENCY_KEY,
        pattern=r"^[\x20-\x7e]+$",
        description="Printable ASCII, at most 255 characters. Repeat a POST with the same key "
        "to get the first result (marked `Idempotent-Replayed: true`), never a second "
        "payment or refund; same key with a different body: 422. Keys belong to the "
        "merchant and are remembered for 24 hours.",
    ),
]
