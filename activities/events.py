"""Event activities: announce every status change on Kafka.

Async (aiokafka is). A publish that fails raises and Temporal retries it until the broker
answers, so no status change goes unannounced; a repeat carries the same event_id.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from temporalio import activity

from payments.contracts import PaymentSnapshot, RefundSnapshot
from payments.events import topics
from payments.events.envelope import (
    Event,
    notification,
    payment_status_event,
    refund_status_event,
)

if TYPE_CHECKING:
    from payments.events.publisher import EventPublisher


class EventActivities:
    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    @activity.defn
    async def publish_payment_status(self, payment: PaymentSnapshot) -> str:
        return await self._announce(
            topics.PAYMENT_STATUS, payment.payment_id, payment_status_event(payment)
        )

    @activity.defn
    async def publish_refund_status(self, refund: RefundSnapshot) -> str:
        return await self._announce(
            topics.REFUND_REQUEST, refund.payment_id, refund_status_event(refund)
        )

    async def _announce(self, topic: str, payment_id: str, event: Event) -> str:
        """Publish the status event and the user's notification of it if there is one, both
        at once (one trip to the broker, not two in a row); returns the event's id. Both are
        keyed by payment_id: a payment's and its refunds' events stay in one partition, in
        order. If either fails the step is retried and both are sent again: consumers
        deduplicate by event_id."""
        sends = [self._publisher.publish(topic, payment_id, event)]
        message = notification(event)
        if message is not None:
            sends.append(self._publisher.publish(topics.NOTIFICATIONS, payment_id, message))
        await asyncio.gather(*sends)
        return str(event["event_id"])
