"""Event activities: announce every status change on Kafka.

Async (aiokafka is). A publish that fails raises and Temporal retries it until the broker
answers, so no status change goes unannounced; a repeat carries the same event_id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import activity

from payments.contracts import PaymentSnapshot, RefundSnapshot
from payments.events import topics
from payments.events.envelope import notification, payment_status_event, refund_status_event

if TYPE_CHECKING:
    from payments.events.publisher import EventPublisher


class EventActivities:
    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    @activity.defn
    async def publish_payment_status(self, payment: PaymentSnapshot) -> str:
        event = payment_status_event(payment)
        await self._publisher.publish(topics.PAYMENT_STATUS, payment.payment_id, event)
        message = notification(event)
        if message is not None:
            await self._publisher.publish(topics.NOTIFICATIONS, payment.payment_id, message)
        return str(event["event_id"])

    @activity.defn
    async def publish_refund_status(self, refund: RefundSnapshot) -> str:
        event = refund_status_event(refund)
        # Keyed by payment_id: a payment's and its refunds' events stay in one partition, in order.
        await self._publisher.publish(topics.REFUND_REQUEST, refund.payment_id, event)
        message = notification(event)
        if message is not None:
            await self._publisher.publish(topics.NOTIFICATIONS, refund.payment_id, message)
        return str(event["event_id"])
