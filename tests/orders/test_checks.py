"""check_order_for_payment: what a request may pay, rule by rule."""

from __future__ import annotations

import pytest

from payments.errors import Conflict, InvalidAmount, InvalidRequest, PaymentServiceError
from payments.money import Money
from payments.orders import Order, check_order_for_payment

ORDER = Order(
    order_id="order-1", user_id="user-1", status="awaiting_payment", amount=Money(4999, "USD")
)


def check(
    order: Order | None = ORDER,
    *,
    user_id: str = "user-1",
    amount: str | None = None,
    currency: str | None = None,
) -> Money:
    return check_order_for_payment(
        order, order_id="order-1", user_id=user_id, amount=amount, currency=currency
    )


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(None, None), ("49.99", "USD"), ("49.990", "usd"), ("49.99", None), (None, "USD")],
)
def test_the_order_decides_the_amount(amount: str | None, currency: str | None) -> None:
    assert check(amount=amount, currency=currency) == Money(4999, "USD")


def test_an_unknown_order_is_invalid_on_order_id() -> None:
    with pytest.raises(InvalidRequest) as raised:
        check(None)

    assert type(raised.value) is InvalidRequest
    assert raised.value.field == "order_id"
    assert "order-1" in raised.value.message


def test_an_order_of_another_user_is_invalid_on_user_id_without_telling_its_status() -> None:
    paid_elsewhere = Order("order-1", "user-2", "paid", Money(4999, "USD"))

    with pytest.raises(InvalidRequest) as raised:
        check(paid_elsewhere, user_id="user-1")

    assert raised.value.field == "user_id"
    assert "paid" not in raised.value.message
    assert "user-2" not in raised.value.message


@pytest.mark.parametrize("status", ["paid", "cancelled", "on_hold"])
def test_an_order_not_awaiting_payment_is_a_conflict_naming_its_status(status: str) -> None:
    order = Order("order-1", "user-1", status, Money(4999, "USD"))

    with pytest.raises(Conflict) as raised:
        check(order)

    assert raised.value.field == "order_id"
    assert status in raised.value.message


def test_an_order_whose_payment_failed_can_be_paid_again() -> None:
    order = Order("order-1", "user-1", "payment_failed", Money(4999, "USD"))
    assert check(order) == Money(4999, "USD")


def test_a_different_currency_is_invalid_naming_both() -> None:
    with pytest.raises(InvalidRequest) as raised:
        check(amount="49.99", currency="EUR")

    assert raised.value.field == "currency"
    assert "EUR" in raised.value.message and "USD" in raised.value.message


def test_a_different_amount_is_invalid_naming_both() -> None:
    with pytest.raises(InvalidRequest) as raised:
        check(amount="50.00", currency="USD")

    assert raised.value.field == "amount"
    assert "50.00" in raised.value.message and "49.99" in raised.value.message


def test_an_amount_that_is_no_amount_is_invalid_on_amount() -> None:
    with pytest.raises(InvalidAmount) as raised:
        check(amount="forty")

    assert raised.value.field == "amount"


def test_rules_apply_in_order_unknown_then_owner_then_status_then_values() -> None:
    foreign_cancelled = Order("order-1", "user-2", "cancelled", Money(4999, "USD"))
    own_cancelled = Order("order-1", "user-1", "cancelled", Money(4999, "USD"))

    def field_of(order: Order | None) -> str | None:
        with pytest.raises(PaymentServiceError) as raised:
            check(order, amount="1.00", currency="EUR")
        return raised.value.field

    assert field_of(None) == "order_id"
    assert field_of(foreign_cancelled) == "user_id"
    with pytest.raises(Conflict):
        check(own_cancelled, amount="1.00", currency="EUR")
    assert field_of(ORDER) == "currency"
