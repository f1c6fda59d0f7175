"""Order Service activity: tell the order what became of its payment."""

from __future__ import annotations

from temporalio import activity

from activities.errors import non_retryable
from payments.contracts import OrderUpdate
from payments.errors import ErrorTypes
from payments.orders.client import OrderService, OrderUpdateRejected, PaymentResult
from payments.vocabulary import PaymentStatus


class OrderActivities:
    def __init__(self, orders: OrderService) -> None:
        self._orders = orders

    @activity.defn
    async def update_order(self, update: OrderUpdate) -> str:
        """Idempotent by event_id on the Order Service's side; unavailability raises and is
        retried, a refusal is final."""
        status: PaymentResult = (
            "success" if update.payment_status == PaymentStatus.SUCCESS else "failure"
        )
        try:
            await self._orders.record_payment(
                update.order_id, update.payment_id, status, update.event_id
            )
        except OrderUpdateRejected as exc:
            raise non_retryable(exc.message, ErrorTypes.ORDER_UPDATE_REJECTED) from exc
        return update.event_id
