"""Whether an order may be paid by this request, and for how much. Pure: no I/O.

The order decides what is charged; the request may repeat amount and currency (then they must
agree with the order) or leave them out (None: take the order's).
"""

from __future__ import annotations

from payments.errors import Conflict, InvalidRequest
from payments.money import Money
from payments.orders.client import Order, OrderStatus

# Statuses in which an order takes a payment. Only one today: an order whose payment failed
# must be put back to awaiting_payment by the Order Service before it can be paid again.
# A declined payment leaves the order payable: the customer may try another card.
PAYABLE_STATUSES = frozenset({OrderStatus.AWAITING_PAYMENT, OrderStatus.PAYMENT_FAILED})


def check_order_for_payment(
    order: Order | None,
    *,
    order_id: str,
    user_id: str,
    amount: str | None,
    currency: str | None,
) -> Money:
    """The amount to charge for ``order``, or the reason this request may not pay it.

    In this order (the first failing rule is reported):
    - no such order → InvalidRequest, field ``order_id`` (422);
    - the order belongs to another user → InvalidRequest, field ``user_id`` (its status is not
      told to someone who does not own it);
    - the order does not await payment → Conflict, field ``order_id`` (409), naming its status;
    - ``currency`` given and not the order's → InvalidRequest, field ``currency``;
    - ``amount`` given and not the order's → InvalidRequest, field ``amount`` (compared as
      money: "49.9" equals "49.90"; an unparsable amount raises InvalidAmount).
    Both values are named in a mismatch message.
    """
    if order is None:
        raise InvalidRequest(f"order {order_id} does not exist", field="order_id")
    if order.user_id != user_id:
        raise InvalidRequest(f"order {order_id} does not belong to user {user_id}", field="user_id")
    if order.status not in PAYABLE_STATUSES:
        raise Conflict(
            f"order {order_id} is {order.status}, not {OrderStatus.AWAITING_PAYMENT}",
            field="order_id",
        )
    expected = order.amount
    if currency is not None and currency.strip().upper() != expected.currency:
        raise InvalidRequest(
            f"currency {currency!r} does not match order {order_id}'s currency "
            f"{expected.currency!r}",
            field="currency",
        )
    if amount is not None:
        requested = Money.parse(amount, expected.currency, field="amount")
        if requested != expected:
            raise InvalidRequest(
                f"amount {amount!r} does not match order {order_id}'s amount "
                f"'{expected}' {expected.currency}",
                field="amount",
            )
    return expected
