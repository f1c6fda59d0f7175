"""Payments: a payment moves only pending → success | failure.

Repeating the transition a payment already made is a no-op (activities are retried); any
other raises InvalidTransition and is kept in the audit trail as refused. Changes to a
payment take its row lock (``locked_payment``), as refunds of it do."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from payments.contracts import PaymentOutcome, PaymentRequest
from payments.db.models import AuditEvent, Payment, utcnow
from payments.db.repositories.audit import record_refusal, record_transition
from payments.db.repositories.base import Repository, locked_payment
from payments.db.repositories.idempotency import (
    PAYMENT_SCOPE,
    IdempotencyClaim,
    claim_key,
    claimed_resource,
    release_key,
)
from payments.db.repositories.pagination import Page, encode_cursor, newest_first, page_of
from payments.errors import InvalidTransition
from payments.vocabulary import PaymentStatus

PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    PaymentStatus.PENDING: frozenset({PaymentStatus.SUCCESS, PaymentStatus.FAILURE}),
    PaymentStatus.SUCCESS: frozenset(),
    PaymentStatus.FAILURE: frozenset(),
}


class PaymentRepository(Repository):
    def insert(
        self,
        payment: Payment,
        *,
        idempotency: IdempotencyClaim | None = None,
        cause: str = "api",
    ) -> tuple[Payment, bool]:
        """Insert a new pending payment, and with ``idempotency`` the key's record in the same
        transaction. If a concurrent request with the same key won, return its payment
        (``created`` False); the same key with another request raises IdempotencyKeyReused.
        Callers look the key up first (``by_idempotency_key``); this only settles races."""
        try:
            with self._transaction() as session:
                if idempotency is not None:
                    claim_key(session, PAYMENT_SCOPE, idempotency, payment.payment_id)
                session.add(payment)
                session.flush()
                record_transition(session, payment, None, payment.payment_status, cause=cause)
            return payment, True
        except IntegrityError:
            existing = None if idempotency is None else self.by_idempotency_key(idempotency)
            if existing is None:
                raise
            return existing, False

    def by_idempotency_key(self, claim: IdempotencyClaim) -> Payment | None:
        """The payment an unexpired key already made, None if the key is unused (or has
        expired). Raises IdempotencyKeyReused when the key came with another request."""
        with self._transaction() as session:
            payment_id = claimed_resource(session, PAYMENT_SCOPE, claim)
            return None if payment_id is None else session.get(Payment, payment_id)

    def ensure(self, request: PaymentRequest, *, merchant_id: str) -> Payment:
        """The row of the payment the workflow runs, inserted as the API would have stored it
        unless a row with its id exists; returns the stored row."""
        amount, currency, charged = request.amount_minor, request.currency, False
        if request.presented_amount_minor is not None and request.presented_currency is not None:
            # Converted: the request carries what the gateway charges, the row what was shown.
            amount, currency = request.presented_amount_minor, request.presented_currency
            charged = True
        payment = Payment(
            payment_id=request.payment_id,
            merchant_id=merchant_id,
            order_id=request.order_id,
            gateway_order_id=request.gateway_order_id,
            user_id=request.user_id,
            amount=amount,
            currency=currency,
            charged_amount=request.amount_minor if charged else None,
            charged_currency=request.currency if charged else None,
            exchange_rate=request.exchange_rate,
            rate_as_of=datetime.fromisoformat(request.rate_as_of) if request.rate_as_of else None,
            payment_method_id=request.payment_method_id,
            retry_enabled=request.retry_soft_declines,
            payment_method=request.payment_method,
            idempotency_key=request.idempotency_key,
            request_fingerprint=request.request_fingerprint,
        )
        with self._transaction() as session:
            stored = session.get(Payment, payment.payment_id)
            if stored is None:
                session.add(payment)
                session.flush()
                record_transition(session, payment, None, payment.payment_status, cause="workflow")
                stored = payment
        return stored

    def discard_unstarted(self, payment_id: str) -> None:
        """Compensation when its workflow could not be started: the row must not stay behind
        as a pending payment that nothing will ever finish, nor its idempotency key (a retry
        with the key must start it again). A payment that reached the gateway stays."""
        with self._transaction() as session:
            deleted = session.execute(
                sa.delete(Payment).where(
                    col(Payment.payment_id) == payment_id,
                    col(Payment.payment_status) == PaymentStatus.PENDING,
                    col(Payment.transaction_id).is_(None),
                )
            )
            if getattr(deleted, "rowcount", 0):
                session.execute(
                    sa.delete(AuditEvent).where(col(AuditEvent.payment_id) == payment_id)
                )
                release_key(session, PAYMENT_SCOPE, payment_id)

    def get(self, payment_id: str) -> Payment | None:
        with self._reading() as session:
            return session.get(Payment, payment_id)

    def counts_by_status_and_method(self) -> dict[tuple[str, str], int]:
        """How many payments there are of each (status, method): the API's metrics."""
        with self._reading() as session:
            rows = session.execute(
                sa.select(
                    col(Payment.payment_status), col(Payment.payment_method), sa.func.count()
                ).group_by(col(Payment.payment_status), col(Payment.payment_method))
            )
            return {(status, method): count for status, method, count in rows}

    def find_by_transaction(self, transaction_id: str) -> Payment | None:
        with self._reading() as session:
            return session.exec(
                select(Payment).where(Payment.transaction_id == transaction_id)
            ).first()

    def complete(self, outcome: PaymentOutcome, *, cause: str = "workflow") -> Payment:
        """Record the outcome under the payment's row lock: success or failure, or, while
        ``still_pending``, progress without a transition (the gateway accepted a bank transfer
        that has not settled yet; a soft decline will be retried at ``next_retry_at``).

        Transaction id, response code and gateway status that are None keep what is stored.
        Idempotent for the same end. Every call leaves an audit event; a refused transition
        is logged and audited as refused, then raised (InvalidTransition; NotFound for an
        unknown payment)."""
        try:
            with self._transaction() as session:
                return _complete(session, outcome, cause)
        except InvalidTransition as refused:
            with self._transaction() as session:
                record_refusal(
                    session,
                    outcome.payment_id,
                    None,
                    "payment",
                    _status_of(outcome),
                    cause,
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
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[Payment]:
        """Payments newest first, of the merchant, status, user and order given (each None:
        any); ``cursor`` continues where the previous page ended."""
        query = select(Payment)
        if merchant_id is not None:
            query = query.where(Payment.merchant_id == merchant_id)
        if status is not None:
            query = query.where(Payment.payment_status == status)
        if user_id is not None:
            query = query.where(Payment.user_id == user_id)
        if order_id is not None:
            query = query.where(Payment.order_id == order_id)
        query = newest_first(query, col(Payment.created_at), col(Payment.payment_id), cursor)
        with self._reading() as session:
            rows = list(session.exec(query.limit(limit + 1)).all())
        return page_of(rows, limit, lambda p: encode_cursor(p.created_at, p.payment_id))


def _status_of(outcome: PaymentOutcome) -> PaymentStatus:
    if outcome.still_pending:
        return PaymentStatus.PENDING
    return PaymentStatus.SUCCESS if outcome.succeeded else PaymentStatus.FAILURE


def _complete(session: Session, outcome: PaymentOutcome, cause: str) -> Payment:
    payment_id, status = outcome.payment_id, _status_of(outcome)
    payment = locked_payment(session, payment_id)
    if payment.payment_status == status and status != PaymentStatus.PENDING:
        return payment
    if status != PaymentStatus.PENDING and (
        status not in PAYMENT_TRANSITIONS[payment.payment_status]
    ):
        raise InvalidTransition(
            f"payment {payment_id} cannot go from {payment.payment_status} to {status}"
        )
    if status == PaymentStatus.PENDING and payment.payment_status != status:
        raise InvalidTransition(f"payment {payment_id} is {payment.payment_status}, not pending")
    previous = payment.payment_status
    if outcome.attempts is not None:
        payment.attempts = outcome.attempts
    payment.next_retry_at = (
        datetime.fromisoformat(outcome.next_retry_at)
        if outcome.next_retry_at and status == PaymentStatus.PENDING
        else None
    )
    payment.payment_status = status
    payment.transaction_id = outcome.transaction_id or payment.transaction_id
    payment.processor_response_code = (
        outcome.processor_response_code or payment.processor_response_code
    )
    payment.failure_reason = outcome.failure_reason
    payment.failure_message = outcome.failure_message
    payment.gateway_status = outcome.gateway_status or payment.gateway_status
    payment.decline_type = outcome.decline_type
    if (instrument := outcome.instrument) is not None:
        payment.instrument_type = instrument.instrument_type
        payment.card_brand = instrument.brand
        payment.card_last4 = instrument.last4
        payment.wallet_type = instrument.wallet
        payment.instrument_display = instrument.display
    payment.updated_at = utcnow()
    session.add(payment)
    retry = (
        f"retry {outcome.attempts + 1} at {outcome.next_retry_at}"
        if outcome.next_retry_at and outcome.attempts
        else None
    )
    record_transition(
        session, payment, previous, status, cause=cause, detail=retry or outcome.failure_reason
    )
    return payment
