"""HttpOrderService against the local Order Service over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from devtools.serving import BackgroundServer
from payments.config import OrderServiceSettings
from payments.errors import ServiceUnavailable
from payments.money import Money
from payments.orders import HttpOrderService, Order, OrderUpdateRejected
from payments.orders.client import build_order_service
from tests.orders.conftest import USER_ID
from tests.support.order_service import OrderServiceAdmin, new_order_id


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [("49.99", "USD", Money(4999, "USD")), ("1.5", "KWD", Money(1500, "KWD"))],
)
async def test_get_order_returns_the_order_with_its_amount_as_money(
    orders: HttpOrderService, admin: OrderServiceAdmin, amount: str, currency: str, expected: Money
) -> None:
    order_id = new_order_id()
    await admin.create_order(order_id=order_id, user_id=USER_ID, amount=amount, currency=currency)

    order = await orders.get_order(order_id)

    assert order == Order(
        order_id=order_id, user_id=USER_ID, status="awaiting_payment", amount=expected
    )


async def test_unknown_order_is_none(orders: HttpOrderService) -> None:
    assert await orders.get_order(new_order_id()) is None


async def test_recording_a_payment_twice_with_one_event_id_applies_it_once(
    orders: HttpOrderService, admin: OrderServiceAdmin, awaiting_order: str
) -> None:
    await orders.record_payment(awaiting_order, "pay-1", "success", "event-1")
    await orders.record_payment(awaiting_order, "pay-1", "success", "event-1")

    order = await orders.get_order(awaiting_order)
    assert order is not None and order.status == "paid"
    received = (await admin.order(awaiting_order))["payment_updates"]
    assert received == [{"payment_id": "pay-1", "payment_status": "success", "event_id": "event-1"}]


async def test_a_failure_marks_the_order_and_a_later_success_pays_it(
    orders: HttpOrderService, awaiting_order: str
) -> None:
    await orders.record_payment(awaiting_order, "pay-1", "failure", "event-1")
    failed = await orders.get_order(awaiting_order)
    await orders.record_payment(awaiting_order, "pay-2", "success", "event-2")
    paid = await orders.get_order(awaiting_order)

    assert failed is not None and failed.status == "payment_failed"
    assert paid is not None and paid.status == "paid"


async def test_updating_an_unknown_order_is_rejected_not_retried(
    orders: HttpOrderService,
) -> None:
    order_id = new_order_id()
    with pytest.raises(OrderUpdateRejected) as raised:
        await orders.record_payment(order_id, "pay-1", "success", "event-1")

    assert raised.value.status_code == 404
    assert order_id in raised.value.message


async def test_other_client_errors_on_an_update_are_rejected(
    orders: HttpOrderService, admin: OrderServiceAdmin, awaiting_order: str
) -> None:
    await admin.inject_fault(operation="record_payment", status_code=409)

    with pytest.raises(OrderUpdateRejected) as raised:
        await orders.record_payment(awaiting_order, "pay-1", "success", "event-1")

    assert raised.value.status_code == 409
    assert "409" in raised.value.message


@pytest.mark.parametrize("status_code", [500, 502, 503, 429])
async def test_server_errors_are_service_unavailable_and_a_retry_succeeds(
    orders: HttpOrderService, admin: OrderServiceAdmin, awaiting_order: str, status_code: int
) -> None:
    await admin.inject_fault(operation="any", status_code=status_code, times=2)

    with pytest.raises(ServiceUnavailable, match=str(status_code)):
        await orders.get_order(awaiting_order)
    with pytest.raises(ServiceUnavailable, match=str(status_code)):
        await orders.record_payment(awaiting_order, "pay-1", "success", "event-1")

    # The faults are spent: the same calls, retried, go through.
    await orders.record_payment(awaiting_order, "pay-1", "success", "event-1")
    order = await orders.get_order(awaiting_order)
    assert order is not None and order.status == "paid"


def test_without_a_url_there_is_no_order_service() -> None:
    assert build_order_service(OrderServiceSettings(url=None)) is None


async def test_order_service_down_is_service_unavailable(unused_port: int) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        orders = HttpOrderService(client, f"http://127.0.0.1:{unused_port}")
        with pytest.raises(ServiceUnavailable, match="unreachable"):
            await orders.get_order("order-1")
        with pytest.raises(ServiceUnavailable, match="unreachable"):
            await orders.record_payment("order-1", "pay-1", "success", "event-1")


async def test_messages_do_not_carry_credentials_from_the_url(unused_port: int) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        orders = HttpOrderService(client, f"http://svc:s3cret@127.0.0.1:{unused_port}/")
        with pytest.raises(ServiceUnavailable) as raised:
            await orders.get_order("order-1")

    assert "s3cret" not in raised.value.message
    assert f"127.0.0.1:{unused_port}" in raised.value.message


async def test_a_slow_order_service_times_out_as_service_unavailable(
    order_server: BackgroundServer, admin: OrderServiceAdmin
) -> None:
    await admin.inject_fault(operation="get_order", kind="delay", delay_seconds=1.0)
    async with httpx.AsyncClient(timeout=0.2) as client:
        orders = HttpOrderService(client, order_server.url)
        with pytest.raises(ServiceUnavailable, match="timed out"):
            await orders.get_order(new_order_id())


async def test_a_malformed_order_is_service_unavailable_saying_what_is_wrong(
    orders: HttpOrderService, admin: OrderServiceAdmin
) -> None:
    await admin.inject_fault(operation="get_order", kind="malformed")

    with pytest.raises(ServiceUnavailable, match="malformed order") as raised:
        await orders.get_order("x")

    assert "amount" in raised.value.message
    assert "currency" in raised.value.message  # missing from the body
