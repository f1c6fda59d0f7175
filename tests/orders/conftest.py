"""The local Order Service on a free port for the session, reached through HttpOrderService."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from devtools.serving import BackgroundServer
from payments.config import OrderServiceSettings
from payments.orders import HttpOrderService
from payments.orders.client import build_order_service
from tests.support.order_service import (
    OrderServiceAdmin,
    new_order_id,
    start_local_order_service,
)

USER_ID = "user-1"


@pytest.fixture(scope="session")
def order_server() -> Iterator[BackgroundServer]:
    server = start_local_order_service()
    yield server
    server.stop()


@pytest.fixture
async def admin(order_server: BackgroundServer) -> AsyncIterator[OrderServiceAdmin]:
    async with httpx.AsyncClient(base_url=order_server.url, timeout=5, trust_env=False) as client:
        admin = OrderServiceAdmin(client)
        yield admin
        await admin.clear_faults()


@pytest.fixture
async def orders(order_server: BackgroundServer) -> AsyncIterator[HttpOrderService]:
    orders = build_order_service(OrderServiceSettings(url=order_server.url, timeout_seconds=2.0))
    assert orders is not None
    yield orders
    await orders.aclose()


@pytest.fixture
async def awaiting_order(admin: OrderServiceAdmin) -> str:
    """The id of a new order of USER_ID's awaiting a payment of 10.00 EUR."""
    order_id = new_order_id()
    await admin.create_order(order_id=order_id, user_id=USER_ID, amount="10.00", currency="EUR")
    return order_id


@pytest.fixture
def unused_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
