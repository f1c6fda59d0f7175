"""Stored rows → the plain snapshots that cross the Temporal boundary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from payments.contracts import PaymentSnapshot, RefundSnapshot

if TYPE_CHECKING:
    from payments.db.models import Payment, Refund


def payment_snapshot(payment: Payment) -> PaymentSnapshot:
    return PaymentSnapshot(
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        user_id=payment.user_id,
        amount_minor=payment.amount,
        currency=payment.currency,
        status=payment.payment_status,
        payment_method=payment.payment_method,
        transaction_id=payment.transaction_id,
        processor_response_code=payment.processor_response_code,
        failure_reason=payment.failure_reason,
        refunded_minor=payment.refunded_amount,
        updated_at=payment.updated_at.isoformat(),
        charged_minor=payment.charged_amount,
        charged_currency=payment.charged_currency,
        exchange_rate=payment.exchange_rate,
        merchant_id=payment.merchant_id,
        fraud=payment.fraud_verdict,
    )


def refund_snapshot(refund: Refund, payment: Payment) -> RefundSnapshot:
    return RefundSnapshot(
        refund_id=refund.refund_id,
        payment_id=refund.payment_id,
        order_id=payment.order_id,
        user_id=payment.user_id,
        amount_minor=refund.amount,
        currency=refund.currency,
        status=refund.refund_status,
        reason=refund.reason,
        method=refund.method,
        gateway_transaction_id=refund.gateway_transaction_id,
        failure_reason=refund.failure_reason,
        payment_refunded_minor=payment.refunded_amount,
        payment_amount_minor=payment.amount,
        updated_at=refund.updated_at.isoformat(),
        merchant_id=refund.merchant_id,
    )
