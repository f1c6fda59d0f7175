"""The event envelope every outgoing message uses, built from stored snapshots.

Event ids are deterministic (uuid5 of what happened), so a retried publish produces the same
id and consumers deduplicate by ``event_id``: delivery is at-least-once, processing once.
"""

from __future__ import annotations

import uuid
from typing import Any

from payments.contracts import PaymentSnapshot, RefundSnapshot
from payments.money import Money
from payments.vocabulary import PaymentStatus, RefundStatus

SCHEMA_VERSION = 1
_EVENT_NAMESPACE = uuid.UUID("6f1d3a52-3b1e-4c55-9a43-5b7d1c0e2f10")

Event = dict[str, Any]


def event_id(*parts: str) -> str:
    return str(uuid.uuid5(_EVENT_NAMESPACE, ":".join(parts)))


def payment_status_event(payment: PaymentSnapshot) -> Event:
    return {
        "event_id": event_id("payment", payment.payment_id, payment.status),
        "event_type": f"payment.{payment.status}",
        "schema_version": SCHEMA_VERSION,
        "occurred_at": payment.updated_at,
        "payment_id": payment.payment_id,
        "merchant_id": payment.merchant_id,
        "order_id": payment.order_id,
        "user_id": payment.user_id,
        "status": payment.status,
        "amount": str(Money(payment.amount_minor, payment.currency)),
        "currency": payment.currency,
        "payment_method": payment.payment_method,
        "transaction_id": payment.transaction_id,
        "processor_response_code": payment.processor_response_code,
        "failure_reason": payment.failure_reason,
        "refunded_amount": str(Money(payment.refunded_minor, payment.currency)),
        # Set when the payment was charged in another currency than it was presented in.
        "charged_amount": (
            str(Money(payment.charged_minor, payment.charged_currency))
            if payment.charged_minor is not None and payment.charged_currency
            else None
        ),
        "charged_currency": payment.charged_currency,
        "exchange_rate": payment.exchange_rate,
    }


def refund_status_event(refund: RefundSnapshot) -> Event:
    return {
        "event_id": event_id("refund", refund.refund_id, refund.status),
        "event_type": f"refund.{refund.status}",
        "schema_version": SCHEMA_VERSION,
        "occurred_at": refund.updated_at,
        "payment_id": refund.payment_id,
        "merchant_id": refund.merchant_id,
        "refund_id": refund.refund_id,
        "order_id": refund.order_id,
        "user_id": refund.user_id,
        "status": refund.status,
        "amount": str(Money(refund.amount_minor, refund.currency)),
        "currency": refund.currency,
        "reason": refund.reason,
        "method": refund.method,
        "failure_reason": refund.failure_reason,
        "payment_refunded_amount": str(Money(refund.payment_refunded_minor, refund.currency)),
    }


_PAYMENT_MESSAGES = {
    PaymentStatus.SUCCESS: "Your payment of {amount} {currency} for order {order_id} "
    "was successful.",
    PaymentStatus.FAILURE: "Your payment of {amount} {currency} for order {order_id} "
    "did not go through.",
}
_REFUND_MESSAGES = {
    RefundStatus.PROCESSED: "Your refund of {amount} {currency} for order {order_id} "
    "has been processed.",
    RefundStatus.FAILED: "Your refund of {amount} {currency} for order {order_id} "
    "could not be processed.",
}


def _notification(source: Event, template: str, message: str) -> Event:
    return {
        "event_id": event_id("notification", source["event_id"]),
        "event_type": "notification.requested",
        "schema_version": SCHEMA_VERSION,
        "occurred_at": source["occurred_at"],
        "merchant_id": source.get("merchant_id"),
        "user_id": source["user_id"],
        "payment_id": source["payment_id"],
        "refund_id": source.get("refund_id"),
        "order_id": source["order_id"],
        "status": source["status"],
        "amount": source["amount"],
        "currency": source["currency"],
        "template": template,
        "message": message,
        "source_event_id": source["event_id"],
    }


def payment_notification(event: Event) -> Event | None:
    """The user-facing message for a payment event, or None (nothing to tell the user)."""
    text = _PAYMENT_MESSAGES.get(event["status"])
    if text is None:
        return None
    return _notification(event, f"payment_{event['status']}", text.format(**event))


def refund_notification(event: Event) -> Event | None:
    text = _REFUND_MESSAGES.get(event["status"])
    if text is None:
        return None
    return _notification(event, f"refund_{event['status']}", text.format(**event))
