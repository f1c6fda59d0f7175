"""Order Service activity: tell the order what became of its payment.

Registered on every worker: whether a payment updates its order is decided when it starts
(``PaymentRequest.update_order_service``), and any worker of the task queue may run it. A
worker started without ORDER_SERVICE_URL fails the update at once and for good
(``OrderServiceNotConfigured``), instead of leaving it to be retried forever as an activity
type that worker does not know."""

from __future__ import annotations

from temporalio import activity

from activities.errors import non_retryable
from payments.contracts import OrderUpdate
from payments.errors import ErrorTypes
from payments.orders.client import OrderService, OrderUpdateRejected, PaymentResult
from payments.vocabulary import PaymentStatus


class OrderActivities:
    def __init__(self, orders: OrderService | None) -> None:
        """``orders`` None: this worker has no Order Service (ORDER_SERVICE_URL unset)."""
        self._orders = orders

    @activity.defn
    async def update_order(self, update: OrderUpdate) -> str:
        """Idempotent by event_id on the Order Service's side; unavailability raises and is
        retried, a refusal is final, and so is a worker without an Order Service."""
        if self._orders is None:
            raise non_retryable(
                f"payment {update.payment_id} asks for its order {update.order_id} to be "
                "updated, but this worker has no Order Service: set ORDER_SERVICE_URL on "
                "every worker of the task queue (the payment's outcome stands; the "
                "payment_status event announced it)",
                ErrorTypes.ORDER_SERVICE_NOT_CONFIGURED,
            )
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
