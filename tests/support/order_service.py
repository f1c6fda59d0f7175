"""The local Order Service on a free port (a background thread), and a client for its test
helpers (creating orders, reading what it received, injecting faults).

Usage: ``server = start_local_order_service()`` … ``ORDER_SERVICE_URL=server.url`` …
``server.stop()``; talk to the contract only through ``payments.orders.HttpOrderService``.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from devtools.order_service import create_order_service_app
from devtools.serving import BackgroundServer


def start_local_order_service() -> BackgroundServer:
    """A fresh, empty Order Service on 127.0.0.1 and a free port, already accepting requests."""
    return BackgroundServer(create_order_service_app()).start()


def new_order_id() -> str:
    return f"order-{uuid.uuid4().hex[:12]}"


class OrderServiceAdmin:
    """The local Order Service's helper endpoints (not the contract the payment service uses)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def create_order(
        self,
        *,
        user_id: str,
        amount: str,
        currency: str,
        order_id: str | None = None,
        status: str = "awaiting_payment",
    ) -> dict[str, Any]:
        body = {"user_id": user_id, "amount": amount, "currency": currency, "status": status}
        if order_id is not None:
            body["order_id"] = order_id
        response = await self._client.post("/orders", json=body)
        response.raise_for_status()
        created: dict[str, Any] = response.json()
        return created

    async def order(self, order_id: str) -> dict[str, Any]:
        """The order with the payment updates it received (``payment_updates``)."""
        response = await self._client.get("/orders")
        response.raise_for_status()
        for order in response.json():
            if order["order_id"] == order_id:
                found: dict[str, Any] = order
                return found
        raise AssertionError(f"order {order_id} is not in the local order service")

    async def inject_fault(self, **spec: object) -> None:
        """See ``devtools.order_service.OrderServiceFault``: operation, kind, status_code,
        delay_seconds, times."""
        response = await self._client.post("/_faults", json=spec)
        response.raise_for_status()

    async def clear_faults(self) -> None:
        response = await self._client.delete("/_faults")
        response.raise_for_status()
