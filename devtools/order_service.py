"""A small in-memory Order Service for tests and local runs (never production).

It implements the contract of ``payments.orders.client`` and adds helpers that are not part of
it: ``POST /orders`` creates an order, ``GET /orders`` lists every order with the payment
updates it received, ``GET /healthz``, and ``/_faults`` makes the next requests fail (a status,
a malformed body, or a delay) to exercise the client's error paths.

Payment updates: ``success`` makes the order ``paid``; ``failure`` makes it ``payment_failed``
unless it is already paid (a late failure of another attempt does not undo a payment). A
repeated ``event_id`` changes nothing and answers like the first time.

``python -m devtools.order_service`` serves it on ORDER_SERVICE_HOST:ORDER_SERVICE_PORT
(default 127.0.0.1:8070); point the payment service at it with
``ORDER_SERVICE_URL=http://127.0.0.1:8070``. State lives in memory and ends with the process.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from dataclasses import dataclass, field
from typing import Literal

import structlog
import uvicorn
from fastapi import FastAPI, HTTPException, Response, status
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from devtools.serving import bind_or_explain, print_setting_errors
from payments.config import LogSettings
from payments.errors import PaymentServiceError
from payments.logging import configure_logging
from payments.money import Money
from payments.orders.client import OrderStatus, PaymentResult

log = structlog.get_logger(__name__)

# What a "malformed" fault answers: an order whose amount is a JSON number, against the contract.
MALFORMED_ORDER_BODY = b'{"order_id": "x", "user_id": "u", "status": "paid", "amount": 49.99}'


class LocalOrderServiceSettings(BaseSettings):
    """Where ``python -m devtools.order_service`` listens."""

    model_config = SettingsConfigDict(env_prefix="ORDER_SERVICE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8070


# --- HTTP bodies ---------------------------------------------------------------------------------
class OrderCreate(BaseModel):
    order_id: str = Field(default_factory=lambda: f"order-{uuid.uuid4().hex[:12]}", min_length=1)
    user_id: str = Field(min_length=1)
    amount: str
    currency: str
    # Tests create orders in other states (cancelled, paid) to check the payment service.
    status: OrderStatus = OrderStatus.AWAITING_PAYMENT


class OrderPublic(BaseModel):
    order_id: str
    user_id: str
    status: str
    amount: str
    currency: str


class PaymentUpdate(BaseModel):
    payment_id: str = Field(min_length=1)
    payment_status: PaymentResult
    event_id: str = Field(min_length=1)


class OrderWithUpdates(OrderPublic):
    payment_updates: list[PaymentUpdate]


class OrderServiceFault(BaseModel):
    """Fail the next ``times`` requests to ``operation``: answer ``status_code`` with a short
    body (kind=status), answer 200 with an order that breaks the contract (kind=malformed, GET
    only), or wait ``delay_seconds`` before answering normally (kind=delay)."""

    operation: Literal["get_order", "record_payment", "any"] = "any"
    kind: Literal["status", "malformed", "delay"] = "status"
    status_code: int = Field(default=503, ge=400, le=599)
    delay_seconds: float = Field(default=1.0, ge=0, le=60)
    times: int = Field(default=1, ge=1)


# --- state ---------------------------------------------------------------------------------------
@dataclass
class _StoredOrder:
    order_id: str
    user_id: str
    status: str
    amount: Money
    updates: list[PaymentUpdate] = field(default_factory=list)

    def public(self) -> OrderPublic:
        return OrderPublic(
            order_id=self.order_id,
            user_id=self.user_id,
            status=self.status,
            amount=str(self.amount),
            currency=self.amount.currency,
        )


class _Faults:
    def __init__(self) -> None:
        self._pending: list[OrderServiceFault] = []

    def add(self, spec: OrderServiceFault) -> None:
        self._pending.append(spec)

    def clear(self) -> None:
        self._pending.clear()

    def take(self, operation: str) -> OrderServiceFault | None:
        for index, spec in enumerate(self._pending):
            if spec.operation in (operation, "any"):
                if spec.times == 1:
                    del self._pending[index]
                else:
                    self._pending[index] = spec.model_copy(update={"times": spec.times - 1})
                return spec
        return None


def create_order_service_app() -> FastAPI:
    """A fresh in-memory Order Service. Handlers are ``async`` and never await while changing
    state, so they run one at a time on the server's event loop: no lock is needed."""
    app = FastAPI(title="Local Order Service", docs_url=None, redoc_url=None)
    orders: dict[str, _StoredOrder] = {}
    faults = _Faults()

    async def injected(operation: str) -> Response | None:
        spec = faults.take(operation)
        if spec is None:
            return None
        if spec.kind == "delay":
            await asyncio.sleep(spec.delay_seconds)
            return None
        if spec.kind == "malformed":
            return Response(MALFORMED_ORDER_BODY, media_type="application/json")
        return Response(
            f'{{"detail": "injected fault {spec.status_code}"}}',
            status_code=spec.status_code,
            media_type="application/json",
        )

    def find(order_id: str) -> _StoredOrder:
        order = orders.get(order_id)
        if order is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"order {order_id} not found")
        return order

    # --- the contract ----------------------------------------------------------------------------
    @app.get("/orders/{order_id}", response_model=OrderPublic)
    async def get_order(order_id: str) -> OrderPublic | Response:
        fault = await injected("get_order")
        if fault is not None:
            return fault
        return find(order_id).public()

    @app.put("/orders/{order_id}/payment", response_model=OrderPublic)
    async def record_payment(order_id: str, update: PaymentUpdate) -> OrderPublic | Response:
        fault = await injected("record_payment")
        if fault is not None:
            return fault
        order = find(order_id)
        if any(seen.event_id == update.event_id for seen in order.updates):
            return order.public()  # a repeat: already applied
        order.updates.append(update)
        if update.payment_status == "success":
            order.status = OrderStatus.PAID
        elif order.status != OrderStatus.PAID:
            order.status = OrderStatus.PAYMENT_FAILED
        log.info(
            "order payment recorded",
            order_id=order_id,
            payment_id=update.payment_id,
            payment_status=update.payment_status,
            order_status=order.status,
        )
        return order.public()

    # --- helpers for tests and local runs --------------------------------------------------------
    @app.post("/orders", status_code=status.HTTP_201_CREATED, response_model=OrderPublic)
    async def create_order(body: OrderCreate) -> OrderPublic:
        if body.order_id in orders:
            raise HTTPException(status.HTTP_409_CONFLICT, f"order {body.order_id} exists")
        try:
            amount = Money.parse(body.amount, body.currency.upper())
        except PaymentServiceError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.message) from None
        order = _StoredOrder(body.order_id, body.user_id, body.status, amount)
        orders[order.order_id] = order
        return order.public()

    @app.get("/orders", response_model=list[OrderWithUpdates])
    async def list_orders() -> list[OrderWithUpdates]:
        return [
            OrderWithUpdates(**order.public().model_dump(), payment_updates=list(order.updates))
            for order in orders.values()
        ]

    @app.post("/_faults", status_code=status.HTTP_204_NO_CONTENT)
    async def add_fault(spec: OrderServiceFault) -> None:
        faults.add(spec)

    @app.delete("/_faults", status_code=status.HTTP_204_NO_CONTENT)
    async def clear_faults() -> None:
        faults.clear()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> int:
    try:
        settings = LocalOrderServiceSettings()
        log_settings = LogSettings()
    except ValidationError as exc:
        print_setting_errors(exc)
        return 2
    configure_logging(log_settings, process="order-service")
    sock = bind_or_explain(settings.host, settings.port, "ORDER_SERVICE_PORT")
    if sock is None:
        return 1
    host, port = sock.getsockname()[:2]
    log.info("order_service_listening", url=f"http://{host}:{port}")
    try:
        config = uvicorn.Config(create_order_service_app(), log_config=None, access_log=False)
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        log.info("order_service_stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
