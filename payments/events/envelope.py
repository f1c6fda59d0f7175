"""The event envelope every outgoing message uses, built from stored snapshots.

Event ids are deterministic (uuid5 of what happened), so a retried publish produces the same
id and consumers deduplicate by ``event_id``: delivery is at-least-once, processing once.
"""

from __future__ import annotations

import dataclasses
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


def _envelope(event_id: str, event_type: str, occurred_at: str, **body: Any) -> Event:
    """Every event's frame: its id (consumers deduplicate by it), its type, the schema
    version and when it happened; the body follows."""
    return {
        "event_id": event_id,
        "event_type": event_type,
        "schema_version": SCHEMA_VERSION,
        "occurred_at": occurred_at,
        **body,
    }


def payment_status_event(payment: PaymentSnapshot) -> Event:
    return _envelope(
        event_id("payment", payment.payment_id, payment.status),
        f"payment.{payment.status}",
        payment.updated_at,
        payment_id=payment.payment_id,
        merchant_id=payment.merchant_id,
        order_id=payment.order_id,
        user_id=payment.user_id,
        status=payment.status,
        amount=str(Money(payment.amount_minor, payment.currency)),
        currency=payment.currency,
        payment_method=payment.payment_method,
        transaction_id=payment.transaction_id,
        processor_response_code=payment.processor_response_code,
        failure_reason=payment.failure_reason,
        refunded_amount=str(Money(payment.refunded_minor, payment.currency)),
        # Set when the payment was charged in another currency than it was presented in.
        charged_amount=(
            str(Money(payment.charged_minor, payment.charged_currency))
            if payment.charged_minor is not None and payment.charged_currency
            else None
        ),
        charged_currency=payment.charged_currency,
        exchange_rate=payment.exchange_rate,
        # The fraud step's verdict (decision, score, reasons, the learned score and its
        # model); None before the step and for payments from before verdicts.
        fraud=dataclasses.asdict(payment.fraud) if payment.fraud is not None else None,
    )


def refund_status_event(refund: RefundSnapshot) -> Event:
    return _envelope(
        event_id("refund", refund.refund_id, refund.status),
        f"refund.{refund.status}",
        refund.updated_at,
        payment_id=refund.payment_id,
        merchant_id=refund.merchant_id,
        refund_id=refund.refund_id,
        order_id=refund.order_id,
        user_id=refund.user_id,
        status=refund.status,
        amount=str(Money(refund.amount_minor, refund.currency)),
        currency=refund.currency,
        reason=refund.reason,
        method=refund.method,
        failure_reason=refund.failure_reason,
        payment_refunded_amount=str(Money(refund.payment_refunded_minor, refund.currency)),
    )


# What the user is told, by the type of the event that tells it; other events tell nothing.
_MESSAGES = {
    f"payment.{PaymentStatus.SUCCESS}": "Your payment of {amount} {currency} for order "
    "{order_id} was successful.",
    f"payment.{PaymentStatus.FAILURE}": "Your payment of {amount} {currency} for order "
    "{order_id} did not go through.",
    f"refund.{RefundStatus.PROCESSED}": "Your refund of {amount} {currency} for order "
    "{order_id} has been processed.",
    f"refund.{RefundStatus.FAILED}": "Your refund of {amount} {currency} for order "
    "{order_id} could not be processed.",
}


def notification(source: Event) -> Event | None:
    """The user-facing message a payment or refund event calls for, or None."""
    text = _MESSAGES.get(source["event_type"])
    if text is None:
        return None
    return _envelope(
        event_id("notification", source["event_id"]),
        "notification.requested",
        source["occurred_at"],
        merchant_id=source.get("merchant_id"),
        user_id=source["user_id"],
        payment_id=source["payment_id"],
        refund_id=source.get("refund_id"),
        order_id=source["order_id"],
        status=source["status"],
        amount=source["amount"],
        currency=source["currency"],
        template=source["event_type"].replace(".", "_"),
        message=text.format(**source),
        source_event_id=source["event_id"],
    )
