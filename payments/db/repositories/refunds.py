"""Refunds: a refund moves only initiated → processed | failed, and refunds never exceed what
was paid.

The remainder (paid minus every refund not failed, those in flight included) is computed and
the refund inserted while holding the payment's row lock, so concurrent refunds cannot
overdraw; a processed refund adds to the payment's refunded_amount in the transaction that
records it. Repeating a transition is a no-op; any other raises InvalidTransition and is
kept in the audit trail as refused."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from payments.contracts import RefundOutcome
from payments.db import columns
from payments.db.columns import cut
from payments.db.models import AuditEvent, Payment, Refund, utcnow
from payments.db.repositories.audit import record_refusal, record_transition
from payments.db.repositories.base import Repository, locked_payment
from payments.db.repositories.idempotency import (
    REFUND_SCOPE,
    IdempotencyClaim,
    claim_key,
    claimed_resource,
    release_key,
)
from payments.db.repositories.pagination import Page, encode_cursor, newest_first, page_of
from payments.errors import InvalidTransition, NotFound, RefundExceedsRemainder, RefundNotAllowed
from payments.vocabulary import PaymentStatus, RefundStatus

REFUND_TRANSITIONS: dict[str, frozenset[str]] = {
    RefundStatus.INITIATED: frozenset({RefundStatus.PROCESSED, RefundStatus.FAILED}),
    RefundStatus.PROCESSED: frozenset(),
    RefundStatus.FAILED: frozenset(),
}


class RefundRepository(Repository):
    def reserve(
        self,
        refund: Refund,
        *,
        whole_remainder: bool,
        idempotency: IdempotencyClaim | None = None,
        cause: str = "api",
    ) -> tuple[Refund, bool]:
        """Insert an initiated refund if the payment can still give it back.

        Under the payment's row lock: the payment must belong to the refund's merchant and be
        ``success``, and the amount at most the paid amount minus every refund not failed
        (processed or still in flight). With ``whole_remainder`` the refund's amount is set to
        that remainder. With ``idempotency`` the key's record is written in the same
        transaction; a concurrent request with the same key that won returns its refund
        (``created`` False). Callers look the key up first (``by_idempotency_key``).
        """
        try:
            with self._transaction() as session:
                payment = locked_payment(session, refund.payment_id)
                if payment.merchant_id != refund.merchant_id:
                    raise NotFound(f"payment {refund.payment_id} not found", field="payment_id")
                if payment.payment_status != PaymentStatus.SUCCESS:
                    raise RefundNotAllowed(
                        f"payment {payment.payment_id} is {payment.payment_status}: "
                        "only successful payments can be refunded",
                        field="payment_id",
                    )
                remainder = payment.amount - _reserved(session, payment.payment_id)
                if remainder <= 0:
                    raise RefundNotAllowed(
                        f"payment {payment.payment_id} is already fully refunded "
                        "(counting refunds in flight)",
                        field="payment_id",
                    )
                if whole_remainder:
                    refund.amount = remainder
                elif refund.amount > remainder:
                    raise RefundExceedsRemainder(
                        f"refund amount exceeds the refundable remainder of the payment "
                        f"({remainder} minor units of {payment.currency})",
                        field="amount",
                    )
                if idempotency is not None:
                    claim_key(session, REFUND_SCOPE, idempotency, refund.refund_id)
                refund.currency = payment.currency
                if payment.charged_amount is not None:
                    refund.charged_amount = _charged_share(session, payment, refund.amount)
                session.add(refund)
                session.flush()
                record_transition(
                    session, payment, None, refund.refund_status, cause=cause, refund=refund
                )
            return refund, True
        except IntegrityError:
            existing = None if idempotency is None else self.by_idempotency_key(idempotency)
            if existing is None:
                raise
            return existing, False

    def by_idempotency_key(self, claim: IdempotencyClaim) -> Refund | None:
        """The refund an unexpired key already made, None if the key is unused (or has
        expired). Raises IdempotencyKeyReused when the key came with another request."""
        with self._transaction() as session:
            refund_id = claimed_resource(session, REFUND_SCOPE, claim)
            return None if refund_id is None else session.get(Refund, refund_id)

    def remainder(self, payment_id: str) -> int:
        """What can still be refunded of the payment (minor units), read under its row lock."""
        with self._transaction() as session:
            payment = locked_payment(session, payment_id)
            return payment.amount - _reserved(session, payment_id)

    def discard_unstarted(self, refund_id: str) -> None:
        """Compensation when the refund's workflow could not be started: frees the amount
        and the idempotency key. A refund that reached the gateway stays."""
        with self._transaction() as session:
            deleted = session.execute(
                sa.delete(Refund).where(
                    col(Refund.refund_id) == refund_id,
                    col(Refund.refund_status) == RefundStatus.INITIATED,
                    col(Refund.gateway_transaction_id).is_(None),
                )
            )
            if getattr(deleted, "rowcount", 0):
                session.execute(sa.delete(AuditEvent).where(col(AuditEvent.refund_id) == refund_id))
                release_key(session, REFUND_SCOPE, refund_id)

    def get(self, refund_id: str) -> Refund | None:
        with self._reading() as session:
            return session.get(Refund, refund_id)

    def counts_by_status(self) -> dict[str, int]:
        """How many refunds there are in each status: the API's metrics."""
        with self._reading() as session:
            rows = session.execute(
                sa.select(col(Refund.refund_status), sa.func.count()).group_by(
                    col(Refund.refund_status)
                )
            )
            return {status: count for status, count in rows}

    def initiated_ids(self, payment_id: str) -> list[str]:
        """The payment's refunds still in their workflow's hands (some may wait for the
        sale to settle)."""
        with self._reading() as session:
            return list(
                session.scalars(
                    sa.select(col(Refund.refund_id)).where(
                        col(Refund.payment_id) == payment_id,
                        col(Refund.refund_status) == RefundStatus.INITIATED,
                    )
                )
            )

    def complete(self, outcome: RefundOutcome) -> tuple[Refund, Payment]:
        """Record the outcome under the payment's row lock: processed (by ``method``, refund
        or void) or failed; a processed refund adds its amount to the payment's
        refunded_amount in the same transaction. Idempotent; a refused transition is logged
        and audited, then raised (InvalidTransition; NotFound for an unknown refund)."""
        try:
            with self._transaction() as session:
                return _complete(session, outcome)
        except InvalidTransition as refused:
            assert refused.payment_id is not None
            with self._transaction() as session:
                record_refusal(
                    session,
                    refused.payment_id,
                    outcome.refund_id,
                    "refund",
                    _status_of(outcome),
                    "workflow",
                    refused.message,
                )
            raise

    def page(
        self,
        *,
        merchant_id: str | None = None,
        status: str | None = None,
        user_id: str | None = None,
        order_id: str | None = None,
        payment_id: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[Refund]:
        """Refunds newest first, of the merchant, status, payment, and the payment's user and
        order given (each None: any); ``cursor`` continues where the previous page ended."""
        query = select(Refund)
        if user_id is not None or order_id is not None:
            query = query.join(Payment, col(Payment.payment_id) == col(Refund.payment_id))
            if user_id is not None:
                query = query.where(Payment.user_id == user_id)
            if order_id is not None:
                query = query.where(Payment.order_id == order_id)
        if merchant_id is not None:
            query = query.where(Refund.merchant_id == merchant_id)
        if status is not None:
            query = query.where(Refund.refund_status == status)
        if payment_id is not None:
            query = query.where(Refund.payment_id == payment_id)
        query = newest_first(query, col(Refund.created_at), col(Refund.refund_id), cursor)
        with self._reading() as session:
            rows = list(session.exec(query.limit(limit + 1)).all())
        return page_of(rows, limit, lambda r: encode_cursor(r.created_at, r.refund_id))


def _status_of(outcome: RefundOutcome) -> RefundStatus:
    return RefundStatus.PROCESSED if outcome.succeeded else RefundStatus.FAILED


def _complete(session: Session, outcome: RefundOutcome) -> tuple[Refund, Payment]:
    refund_id, status = outcome.refund_id, _status_of(outcome)
    unknown = NotFound(f"refund {refund_id} not found", field="refund_id")
    payment_id = session.exec(
        select(Refund.payment_id).where(Refund.refund_id == refund_id)
    ).first()
    if payment_id is None:
        raise unknown
    # The refund is read only under the payment's lock: read before it, a completion that
    # waited for the lock would act on the status from before the other one committed (on
    # PostgreSQL) and count the refund twice. A refund's payment id never changes.
    payment = locked_payment(session, payment_id)
    refund = session.get(Refund, refund_id)
    if refund is None:  # discarded meanwhile: its workflow was never started
        raise unknown
    if refund.refund_status == status:
        return refund, payment
    if status not in REFUND_TRANSITIONS[refund.refund_status]:
        raise InvalidTransition(
            f"refund {refund_id} cannot go from {refund.refund_status} to {status}",
            payment_id=refund.payment_id,
        )
    now = utcnow()
    previous = refund.refund_status
    refund.refund_status = status
    refund.method = outcome.method
    refund.gateway_transaction_id = outcome.gateway_transaction_id
    refund.failure_reason = outcome.failure_reason
    # RefundWorkflow writes the gateway's code before its message, which the adapter cut
    # to this width already: the two together may not fit.
    refund.failure_message = cut(outcome.failure_message, columns.FAILURE_MESSAGE)
    refund.updated_at = now
    session.add(refund)
    if status == RefundStatus.PROCESSED:
        payment.refunded_amount += refund.amount
        payment.updated_at = now
        session.add(payment)
    record_transition(
        session,
        payment,
        previous,
        status,
        cause="workflow",
        refund=refund,
        detail=outcome.failure_reason or outcome.method,
    )
    return refund, payment


def _reserved(session: Session, payment_id: str) -> int:
    """The payment's amount held by refunds not failed (processed or in flight)."""
    amount, _ = _held(session, payment_id)
    return amount


def _held(session: Session, payment_id: str) -> tuple[int, int]:
    """What the refunds not failed hold: their amount, and their charged shares."""
    amount, charged = session.exec(
        select(
            sa.func.coalesce(sa.func.sum(Refund.amount), 0),
            sa.func.coalesce(sa.func.sum(Refund.charged_amount), 0),
        ).where(Refund.payment_id == payment_id, Refund.refund_status != RefundStatus.FAILED)
    ).one()
    return int(amount), int(charged or 0)  # coalesced, typed Optional all the same


def _charged_share(session: Session, payment: Payment, amount: int) -> int:
    """A converted payment's refund of ``amount`` in the charged currency, at the payment's
    rate, shared out cumulatively: the refunds not failed, this one included, take together
    their part of the charge (rounded half-even) and this one what is not taken yet.
    Rounding each refund on its own would let many small refunds add up to more than was
    charged; this way the shares never exceed the charge, and the refund that takes the
    rest takes exactly the rest. A refund worth less than half a minor unit may take
    nothing: a later one carries it. Never negative: after a failed refund, those left may
    hold a little more than their part (they were rounded beside the failed one); the next
    then take nothing until their part catches up."""
    assert payment.charged_amount is not None
    reserved, taken = _held(session, payment.payment_id)
    part = Decimal(payment.charged_amount) * (reserved + amount) / payment.amount
    return max(0, int(part.to_integral_value(rounding=ROUND_HALF_EVEN)) - taken)
