"""Ledger activities: every database write a workflow makes.

Synchronous (SQLAlchemy is), run on the worker's thread pool. Each is idempotent — a retry
after a crash finds the row already in the target state and returns it — so Temporal may
retry them freely, e.g. while the database is unreachable.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from temporalio import activity

from activities.errors import non_retryable
from activities.snapshots import payment_snapshot, refund_snapshot
from payments.contracts import (
    FraudRecord,
    PaymentOutcome,
    PaymentRequest,
    PaymentSnapshot,
    PurgeRequest,
    RefundOutcome,
    RefundPlan,
    RefundRequest,
    RefundSnapshot,
    ReviewRecord,
    VaultResult,
)
from payments.errors import ErrorTypes, InvalidTransition, NotFound
from payments.vocabulary import PaymentStatus

if TYPE_CHECKING:
    from payments.db.database import Database
    from payments.db.models import Payment, Refund


class LedgerActivities:
    def __init__(self, db: Database, *, default_merchant_id: str) -> None:
        self._db = db
        # The merchant of payments whose workflow input predates merchants.
        self._default_merchant_id = default_merchant_id

    @activity.defn
    def record_payment_pending(self, request: PaymentRequest) -> PaymentSnapshot:
        """Make sure the payment row exists (the API inserts it first; a payment started from
        Kafka or re-run after a crash may not have it yet)."""
        stored = self._db.payments.ensure(
            request, merchant_id=request.merchant_id or self._default_merchant_id
        )
        return payment_snapshot(stored)

    @activity.defn
    def record_payment_outcome(self, outcome: PaymentOutcome) -> PaymentSnapshot:
        with _refusals_are_final("payment"):
            return payment_snapshot(self._db.payments.complete(outcome))

    @activity.defn
    def record_fraud(self, record: FraudRecord) -> PaymentSnapshot:
        """The fraud step's verdict on the payment and in its audit trail."""
        return payment_snapshot(self._db.fraud.record_verdict(record))

    @activity.defn
    def record_review(self, record: ReviewRecord) -> None:
        """An operator's decision on a held payment, in its audit trail."""
        self._db.fraud.record_review(record.payment_id, record.review)

    @activity.defn
    def refund_snapshot(self, request: RefundRequest) -> RefundSnapshot:
        return refund_snapshot(*self._refund_and_payment(request))

    @activity.defn
    def plan_refund(self, request: RefundRequest) -> RefundPlan:
        """Re-check the refund against the payment as stored now. The API reserved the amount
        under the payment's lock; this guards against a payment that changed since."""
        refund, payment = self._refund_and_payment(request)

        def refused(reason: str, message: str) -> RefundPlan:
            return RefundPlan(
                refund_id=refund.refund_id,
                payment_id=payment.payment_id,
                allowed=False,
                transaction_id=payment.transaction_id,
                amount_minor=refund.amount,
                currency=refund.currency,
                whole_payment=False,
                failure_reason=reason,
                failure_message=message,
            )

        if payment.payment_status != PaymentStatus.SUCCESS or payment.transaction_id is None:
            return refused("payment_not_refundable", f"payment is {payment.payment_status}")
        if payment.refunded_amount + refund.amount > payment.amount:
            return refused("exceeds_remainder", "refund exceeds what remains of the payment")
        _, charged_currency = payment.charge
        refund_minor = refund.charged_amount if refund.charged_amount is not None else refund.amount
        return RefundPlan(
            refund_id=refund.refund_id,
            payment_id=payment.payment_id,
            allowed=True,
            transaction_id=payment.transaction_id,
            # The gateway refunds in the currency it charged, at the payment's own rate.
            amount_minor=refund_minor,
            currency=charged_currency,
            whole_payment=payment.refunded_amount == 0 and refund.amount == payment.amount,
        )

    @activity.defn
    def record_refund_outcome(self, outcome: RefundOutcome) -> RefundSnapshot:
        with _refusals_are_final("refund"):
            return refund_snapshot(*self._db.refunds.complete(outcome))

    @activity.defn
    def record_vault_failure(self, result: VaultResult) -> str:
        """Mark a pending payment method failed (idempotent; a method that became active
        meanwhile stays active)."""
        self._db.payment_methods.fail(
            result.payment_method_id, code=result.error_code, message=result.error_message
        )
        return result.payment_method_id

    @activity.defn
    def purge_expired_idempotency_keys(self, request: PurgeRequest) -> int:
        """Delete idempotency keys past their expiry, a bounded batch at a time (the next
        reconciliation takes the next batch). Idempotent."""
        return self._db.idempotency_keys.purge_expired(limit=request.limit)

    def _refund_and_payment(self, request: RefundRequest) -> tuple[Refund, Payment]:
        refund = self._db.refunds.get(request.refund_id)
        payment = self._db.payments.get(request.payment_id)
        if refund is None or payment is None:
            raise non_retryable(
                f"refund {request.refund_id} of payment {request.payment_id} not found",
                ErrorTypes.PAYMENT_NOT_FOUND,
            )
        return refund, payment


@contextmanager
def _refusals_are_final(subject: str) -> Iterator[None]:
    """A transition the state machine refuses, or a row that is missing, cannot heal by
    retrying: both end the step (a refusal is logged loudly: a bug, or a race lost)."""
    try:
        yield
    except InvalidTransition as exc:
        activity.logger.error("refused %s transition: %s", subject, exc.message)
        raise non_retryable(exc.message, ErrorTypes.INVALID_TRANSITION) from exc
    except NotFound as exc:
        raise non_retryable(exc.message, ErrorTypes.PAYMENT_NOT_FOUND) from exc
