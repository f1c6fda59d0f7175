"""All reads and writes of payments and refunds. One short transaction per method.

The repository enforces the invariants that must hold however many processes race:
- a payment or refund moves only along its state machine (pending → success|failure,
  initiated → processed|failed); repeating the same transition is a no-op, so activities can
  be retried; any other transition raises InvalidTransition;
- refunds never exceed what was paid: the remainder is computed and the refund inserted while
  holding the payment's row lock (FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite);
- an idempotency key of a merchant maps to exactly one payment or refund until it expires
  (primary key of idempotency_keys; the record is written in the transaction that writes
  the row it names).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from payments.db.models import (
    AuditEvent,
    ExchangeRate,
    IdempotencyRecord,
    Payment,
    ReconciliationReport,
    Refund,
    StoredPaymentMethod,
    WebhookReceipt,
    utcnow,
)
from payments.errors import (
    IdempotencyKeyReused,
    InvalidRequest,
    InvalidTransition,
    NotFound,
    RefundExceedsRemainder,
    RefundNotAllowed,
)
from payments.gateway.types import InstrumentDetails
from payments.vocabulary import PaymentStatus, RefundStatus, VaultStatus

log = structlog.get_logger(__name__)


PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    PaymentStatus.PENDING: frozenset({PaymentStatus.SUCCESS, PaymentStatus.FAILURE}),
    PaymentStatus.SUCCESS: frozenset(),
    PaymentStatus.FAILURE: frozenset(),
}
REFUND_TRANSITIONS: dict[str, frozenset[str]] = {
    RefundStatus.INITIATED: frozenset({RefundStatus.PROCESSED, RefundStatus.FAILED}),
    RefundStatus.PROCESSED: frozenset(),
    RefundStatus.FAILED: frozenset(),
}


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """An Idempotency-Key sent with a request: who sent it, the key, and a hash of the request
    it came with (the same key with another request is refused)."""

    merchant_id: str
    key: str
    fingerprint: str
    ttl_seconds: float


PAYMENT_SCOPE = "payment"
REFUND_SCOPE = "refund"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(created_at: datetime, key: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{key}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, key = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(created), key
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("cursor is not one this API returned", field="cursor") from None


class PaymentRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._lock_rows = engine.dialect.name != "sqlite"  # SQLite: BEGIN IMMEDIATE instead

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            yield session

    # --- payments --------------------------------------------------------------------------
    def insert_payment(
        self,
        payment: Payment,
        *,
        idempotency: IdempotencyClaim | None = None,
        cause: str = "api",
    ) -> tuple[Payment, bool]:
        """Insert a new pending payment, and with ``idempotency`` the key's record in the same
        transaction. If a concurrent request with the same key won, return its payment
        (``created`` False); the same key with another request raises IdempotencyKeyReused.
        Callers look the key up first (``idempotent_payment``); this only settles races."""
        try:
            with self._transaction() as session:
                if idempotency is not None:
                    self._claim(session, PAYMENT_SCOPE, idempotency, payment.payment_id)
                session.add(payment)
                session.flush()
                self._audit(session, payment, None, payment.payment_status, cause=cause)
            return payment, True
        except IntegrityError:
            if idempotency is None:
                raise
            existing = self.idempotent_payment(idempotency)
            if existing is None:
                raise
            return existing, False

    def idempotent_payment(self, claim: IdempotencyClaim) -> Payment | None:
        """The payment an unexpired key already made, None if the key is unused (or has
        expired). Raises IdempotencyKeyReused when the key came with another request."""
        with self._transaction() as session:
            resource_id = self._resource_for(session, PAYMENT_SCOPE, claim)
            return None if resource_id is None else session.get(Payment, resource_id)

    def _resource_for(self, session: Session, scope: str, claim: IdempotencyClaim) -> str | None:
        record = session.get(IdempotencyRecord, (claim.merchant_id, scope, claim.key))
        if record is None or record.expires_at <= utcnow():
            return None
        if record.request_fingerprint != claim.fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request",
                field="Idempotency-Key",
            )
        return record.resource_id

    def _claim(
        self, session: Session, scope: str, claim: IdempotencyClaim, resource_id: str
    ) -> None:
        """Record the key for ``resource_id``; an expired record of the same key is replaced
        (the key starts something new). A live one makes the flush raise IntegrityError."""
        now = utcnow()
        session.execute(
            sa.delete(IdempotencyRecord).where(
                col(IdempotencyRecord.merchant_id) == claim.merchant_id,
                col(IdempotencyRecord.scope) == scope,
                col(IdempotencyRecord.key) == claim.key,
                col(IdempotencyRecord.expires_at) <= now,
            )
        )
        session.add(
            IdempotencyRecord(
                merchant_id=claim.merchant_id,
                scope=scope,
                key=claim.key,
                resource_id=resource_id,
                request_fingerprint=claim.fingerprint,
                created_at=now,
                expires_at=now + timedelta(seconds=claim.ttl_seconds),
            )
        )
        session.flush()

    def purge_expired_idempotency_keys(self, *, limit: int = 1000) -> int:
        """Delete up to ``limit`` expired records (housekeeping; a lookup ignores them)."""
        with self._transaction() as session:
            keys = session.exec(
                select(IdempotencyRecord)
                .where(col(IdempotencyRecord.expires_at) <= utcnow())
                .limit(limit)
            ).all()
            for record in keys:
                session.delete(record)
            return len(keys)

    def ensure_payment(self, payment: Payment) -> Payment:
        """Insert the payment unless a row with its id exists; return the stored row."""
        with self._transaction() as session:
            stored = session.get(Payment, payment.payment_id)
            if stored is None:
                session.add(payment)
                session.flush()
                self._audit(session, payment, None, payment.payment_status, cause="workflow")
                stored = payment
        return stored

    def discard_unstarted_payment(self, payment_id: str) -> None:
        """Compensation when its workflow could not be started: the row must not stay behind
        as a pending payment that nothing will ever finish, nor its idempotency key (a retry
        with the key must start it again)."""
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
                session.execute(
                    sa.delete(IdempotencyRecord).where(
                        col(IdempotencyRecord.scope) == PAYMENT_SCOPE,
                        col(IdempotencyRecord.resource_id) == payment_id,
                    )
                )

    def get_payment(self, payment_id: str) -> Payment | None:
        with self._transaction() as session:
            return session.get(Payment, payment_id)

    def find_open_payment_for_order(
        self, order_id: str, *, excluding: str, merchant_id: str | None = None
    ) -> Payment | None:
        """An earlier payment of the merchant for the order that is pending or succeeded (the
        duplicate check; order ids are the merchant's, two merchants may share one). Only
        earlier ones (by creation, then id): of two payments racing for one order, the first
        proceeds and the second is the duplicate — never both refused."""
        with self._transaction() as session:
            this = session.get(Payment, excluding)
            if merchant_id is None and this is not None:
                merchant_id = this.merchant_id
            query = select(Payment).where(
                Payment.order_id == order_id,
                Payment.payment_id != excluding,
                col(Payment.payment_status).in_([PaymentStatus.PENDING, PaymentStatus.SUCCESS]),
            )
            if merchant_id is not None:
                query = query.where(Payment.merchant_id == merchant_id)
            if this is not None:
                query = query.where(
                    sa.or_(
                        col(Payment.created_at) < this.created_at,
                        sa.and_(
                            col(Payment.created_at) == this.created_at,
                            col(Payment.payment_id) < this.payment_id,
                        ),
                    )
                )
            return session.exec(query.order_by(col(Payment.created_at))).first()

    def complete_payment(
        self,
        payment_id: str,
        status: PaymentStatus,
        *,
        transaction_id: str | None = None,
        processor_response_code: str | None = None,
        failure_reason: str | None = None,
        failure_message: str | None = None,
        gateway_status: str | None = None,
        decline_type: str | None = None,
        instrument: InstrumentDetails | None = None,
        attempts: int | None = None,
        next_retry_at: datetime | None = None,
        cause: str = "workflow",
        detail: str | None = None,
    ) -> Payment:
        """Move a pending payment to success or failure. Idempotent for the same target.

        ``status`` pending records progress without a transition (the gateway accepted a
        bank transfer that has not settled yet; a soft decline will be retried): transaction
        id, gateway status, instrument, attempts, next retry. Every call leaves an audit
        event; a refused transition is logged and audited as refused, then raised.
        """
        try:
            return self._complete_payment(
                payment_id,
                status,
                transaction_id=transaction_id,
                processor_response_code=processor_response_code,
                failure_reason=failure_reason,
                failure_message=failure_message,
                gateway_status=gateway_status,
                decline_type=decline_type,
                instrument=instrument,
                attempts=attempts,
                next_retry_at=next_retry_at,
                cause=cause,
                detail=detail,
            )
        except InvalidTransition as refused:
            self._record_refusal(payment_id, None, "payment", status, cause, refused.message)
            raise

    def _complete_payment(
        self,
        payment_id: str,
        status: PaymentStatus,
        *,
        transaction_id: str | None,
        processor_response_code: str | None,
        failure_reason: str | None,
        failure_message: str | None,
        gateway_status: str | None,
        decline_type: str | None,
        instrument: InstrumentDetails | None,
        attempts: int | None,
        next_retry_at: datetime | None,
        cause: str,
        detail: str | None,
    ) -> Payment:
        with self._transaction() as session:
            payment = self._locked_payment(session, payment_id)
            if payment.payment_status == status and status != PaymentStatus.PENDING:
                return payment
            if status != PaymentStatus.PENDING and (
                status not in PAYMENT_TRANSITIONS[payment.payment_status]
            ):
                raise InvalidTransition(
                    f"payment {payment_id} cannot go from {payment.payment_status} to {status}"
                )
            if status == PaymentStatus.PENDING and payment.payment_status != status:
                raise InvalidTransition(
                    f"payment {payment_id} is {payment.payment_status}, not pending"
                )
            previous = payment.payment_status
            if attempts is not None:
                payment.attempts = attempts
            payment.next_retry_at = next_retry_at if status == PaymentStatus.PENDING else None
            payment.payment_status = status
            payment.transaction_id = transaction_id or payment.transaction_id
            payment.processor_response_code = (
                processor_response_code or payment.processor_response_code
            )
            payment.failure_reason = failure_reason
            payment.failure_message = failure_message
            payment.gateway_status = gateway_status or payment.gateway_status
            payment.decline_type = decline_type
            if instrument is not None:
                payment.instrument_type = instrument.instrument_type
                payment.card_brand = instrument.brand
                payment.card_last4 = instrument.last4
                payment.wallet_type = instrument.wallet
                payment.instrument_display = instrument.display
            payment.updated_at = utcnow()
            session.add(payment)
            self._audit(
                session,
                payment,
                previous,
                status,
                cause=cause,
                detail=detail or failure_reason,
            )
        return payment

    def _audit(
        self,
        session: Session,
        payment: Payment,
        from_status: str | None,
        to_status: str,
        *,
        cause: str,
        refund: Refund | None = None,
        detail: str | None = None,
    ) -> None:
        session.add(
            AuditEvent(
                payment_id=payment.payment_id,
                refund_id=refund.refund_id if refund else None,
                subject="refund" if refund else "payment",
                from_status=from_status,
                to_status=to_status,
                cause=cause,
                gateway_status=None if refund else payment.gateway_status,
                processor_response_code=None if refund else payment.processor_response_code,
                detail=(detail or None) and detail[:500],
            )
        )

    def _record_refusal(
        self,
        payment_id: str,
        refund_id: str | None,
        subject: str,
        to_status: str,
        cause: str,
        message: str,
    ) -> None:
        log.warning(
            "status change refused",
            payment_id=payment_id,
            refund_id=refund_id,
            to_status=to_status,
            cause=cause,
            reason=message,
        )
        with self._transaction() as session:
            session.add(
                AuditEvent(
                    payment_id=payment_id,
                    refund_id=refund_id,
                    subject=subject,
                    to_status=to_status,
                    accepted=False,
                    cause=cause,
                    detail=message[:500],
                )
            )

    def audit_trail(self, payment_id: str) -> list[AuditEvent]:
        with self._transaction() as session:
            return list(
                session.exec(
                    select(AuditEvent)
                    .where(AuditEvent.payment_id == payment_id)
                    .order_by(col(AuditEvent.audit_id))
                ).all()
            )

    # --- exchange rates --------------------------------------------------------------------
    def add_rate(self, rate: ExchangeRate) -> ExchangeRate:
        with self._transaction() as session:
            session.add(rate)
        return rate

    def current_rate(self, base: str, quote: str) -> ExchangeRate | None:
        with self._transaction() as session:
            return session.exec(
                select(ExchangeRate)
                .where(ExchangeRate.base == base, ExchangeRate.quote == quote)
                .order_by(col(ExchangeRate.as_of).desc(), col(ExchangeRate.rate_id).desc())
                .limit(1)
            ).first()

    def find_payment_by_transaction(self, transaction_id: str) -> Payment | None:
        with self._transaction() as session:
            return session.exec(
                select(Payment).where(Payment.transaction_id == transaction_id)
            ).first()

    def open_payments(self, *, older_than: datetime, limit: int = 500) -> list[Payment]:
        """Pending payments last touched before ``older_than`` (reconciliation)."""
        with self._transaction() as session:
            return list(
                session.exec(
                    select(Payment)
                    .where(
                        Payment.payment_status == PaymentStatus.PENDING,
                        col(Payment.updated_at) < older_than,
                    )
                    .order_by(col(Payment.updated_at))
                    .limit(limit)
                ).all()
            )

    def open_refunds(self, *, older_than: datetime, limit: int = 500) -> list[Refund]:
        with self._transaction() as session:
            return list(
                session.exec(
                    select(Refund)
                    .where(
                        Refund.refund_status == RefundStatus.INITIATED,
                        col(Refund.updated_at) < older_than,
                    )
                    .order_by(col(Refund.updated_at))
                    .limit(limit)
                ).all()
            )

    # --- vaulted payment methods -----------------------------------------------------------
    def add_pending_payment_method(self, method: StoredPaymentMethod) -> StoredPaymentMethod:
        """The row a vault starts with (status pending), before the gateway is asked."""
        with self._transaction() as session:
            session.add(method)
        return method

    def activate_payment_method(
        self,
        payment_method_id: str,
        *,
        gateway_customer_id: str,
        token_ciphertext: str,
        instrument: InstrumentDetails,
    ) -> StoredPaymentMethod:
        """The gateway vaulted it: store its token (encrypted) and what may be shown.
        Idempotent (a retried activity finds it active)."""
        with self._transaction() as session:
            stored = session.get(StoredPaymentMethod, payment_method_id)
            if stored is None:
                raise NotFound(f"payment method {payment_method_id} not found")
            if stored.status != VaultStatus.ACTIVE:
                stored.status = VaultStatus.ACTIVE
                stored.gateway_customer_id = gateway_customer_id
                stored.token_ciphertext = token_ciphertext
                stored.instrument_type = instrument.instrument_type
                stored.brand = instrument.brand
                stored.last4 = instrument.last4
                stored.expiration = instrument.expiration
                stored.wallet_type = instrument.wallet
                stored.display = instrument.display
                session.add(stored)
        return stored

    def fail_payment_method(
        self, payment_method_id: str, *, code: str | None, message: str | None
    ) -> StoredPaymentMethod | None:
        """The gateway refused the nonce: the method stays unusable, with the reason."""
        with self._transaction() as session:
            stored = session.get(StoredPaymentMethod, payment_method_id)
            if stored is not None and stored.status == VaultStatus.PENDING:
                stored.status = VaultStatus.FAILED
                stored.failure_code = (code or "refused")[:32]
                stored.failure_message = message[:255] if message else None
                session.add(stored)
        return stored

    def get_payment_method(self, payment_method_id: str) -> StoredPaymentMethod | None:
        with self._transaction() as session:
            return session.get(StoredPaymentMethod, payment_method_id)

    def list_payment_methods(self, user_id: str, *, merchant_id: str) -> list[StoredPaymentMethod]:
        """A user's active saved methods at one merchant, newest first."""
        with self._transaction() as session:
            return list(
                session.exec(
                    select(StoredPaymentMethod)
                    .where(
                        StoredPaymentMethod.merchant_id == merchant_id,
                        StoredPaymentMethod.user_id == user_id,
                        StoredPaymentMethod.status == VaultStatus.ACTIVE,
                        col(StoredPaymentMethod.deleted_at).is_(None),
                    )
                    .order_by(col(StoredPaymentMethod.created_at).desc())
                ).all()
            )

    def delete_payment_method(self, payment_method_id: str) -> StoredPaymentMethod | None:
        """Soft delete (payments keep their reference); returns the row, None if unknown."""
        with self._transaction() as session:
            stored = session.get(StoredPaymentMethod, payment_method_id)
            if stored is not None and stored.deleted_at is None:
                stored.deleted_at = utcnow()
                session.add(stored)
        return stored

    # --- webhooks ----------------------------------------------------------------------------
    def first_receipt(self, digest: str, kind: str, *, keep_after: datetime) -> bool:
        """Record a webhook notification by digest; False if it was recorded before (a
        replay). Receipts older than ``keep_after`` are pruned: notifications that old are
        refused before they get here."""
        try:
            with self._transaction() as session:
                session.execute(
                    sa.delete(WebhookReceipt).where(col(WebhookReceipt.received_at) < keep_after)
                )
                session.add(WebhookReceipt(digest=digest, kind=kind[:64]))
            return True
        except IntegrityError:
            return False

    def forget_receipt(self, digest: str) -> None:
        """Undo first_receipt for a notification whose handling failed (its redelivery is
        then handled, not taken for a replay)."""
        with self._transaction() as session:
            session.execute(sa.delete(WebhookReceipt).where(col(WebhookReceipt.digest) == digest))

    # --- reconciliation reports ------------------------------------------------------------
    def save_report(self, report: ReconciliationReport) -> None:
        with self._transaction() as session:
            if session.get(ReconciliationReport, report.report_id) is None:
                session.add(report)

    def latest_report(self) -> ReconciliationReport | None:
        with self._transaction() as session:
            return session.exec(
                select(ReconciliationReport)
                .order_by(col(ReconciliationReport.started_at).desc())
                .limit(1)
            ).first()

    def _locked_payment(self, session: Session, payment_id: str) -> Payment:
        query = select(Payment).where(Payment.payment_id == payment_id)
        if self._lock_rows:
            query = query.with_for_update()
        payment = session.exec(query).first()
        if payment is None:
            raise NotFound(f"payment {payment_id} not found", field="payment_id")
        return payment

    def list_payments(
        self,
        *,
        merchant_id: str | None = None,
        status: str | None = None,
        user_id: str | None = None,
        order_id: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[Payment]:
        query = select(Payment)
        if merchant_id is not None:
            query = query.where(Payment.merchant_id == merchant_id)
        if status is not None:
            query = query.where(Payment.payment_status == status)
        if user_id is not None:
            query = query.where(Payment.user_id == user_id)
        if order_id is not None:
            query = query.where(Payment.order_id == order_id)
        query = _newest_first(query, col(Payment.created_at), col(Payment.payment_id), cursor)
        with self._transaction() as session:
            rows = list(session.exec(query.limit(limit + 1)).all())
        return _page(rows, limit, lambda p: encode_cursor(p.created_at, p.payment_id))

    # --- refunds ---------------------------------------------------------------------------
    def reserve_refund(
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
        (``created`` False). Callers look the key up first (``idempotent_refund``).
        """
        try:
            with self._transaction() as session:
                payment = self._locked_payment(session, refund.payment_id)
                if payment.merchant_id != refund.merchant_id:
                    raise NotFound(f"payment {refund.payment_id} not found", field="payment_id")
                if payment.payment_status != PaymentStatus.SUCCESS:
                    raise RefundNotAllowed(
                        f"payment {payment.payment_id} is {payment.payment_status}: "
                        "only successful payments can be refunded",
                        field="payment_id",
                    )
                remainder = payment.amount - self._reserved(session, payment.payment_id)
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
                    self._claim(session, REFUND_SCOPE, idempotency, refund.refund_id)
                refund.currency = payment.currency
                if payment.charged_amount is not None:
                    refund.charged_amount = self._charged_share(session, payment, refund.amount)
                session.add(refund)
                session.flush()
                self._audit(
                    session, payment, None, refund.refund_status, cause=cause, refund=refund
                )
            return refund, True
        except IntegrityError:
            if idempotency is None:
                raise
            existing = self.idempotent_refund(idempotency)
            if existing is None:
                raise
            return existing, False

    def idempotent_refund(self, claim: IdempotencyClaim) -> Refund | None:
        """The refund an unexpired key already made; see ``idempotent_payment``."""
        with self._transaction() as session:
            resource_id = self._resource_for(session, REFUND_SCOPE, claim)
            return None if resource_id is None else session.get(Refund, resource_id)

    def _charged_share(self, session: Session, payment: Payment, amount: int) -> int:
        """A converted payment's refund, in the charged currency, at the payment's rate. The
        refund that takes the rest takes exactly the rest of what was charged, so that
        rounding never leaves a cent behind or refunds one too many."""
        assert payment.charged_amount is not None and payment.exchange_rate is not None
        reserved = self._reserved(session, payment.payment_id)
        if reserved + amount >= payment.amount:
            charged_reserved = session.exec(
                select(sa.func.coalesce(sa.func.sum(Refund.charged_amount), 0)).where(
                    Refund.payment_id == payment.payment_id,
                    Refund.refund_status != RefundStatus.FAILED,
                )
            ).one()
            return payment.charged_amount - int(charged_reserved or 0)
        share = Decimal(amount) * Decimal(payment.charged_amount) / Decimal(payment.amount)
        return int(share.to_integral_value(rounding=ROUND_HALF_EVEN))

    def _reserved(self, session: Session, payment_id: str) -> int:
        total = session.exec(
            select(sa.func.coalesce(sa.func.sum(Refund.amount), 0)).where(
                Refund.payment_id == payment_id, Refund.refund_status != RefundStatus.FAILED
            )
        ).one()
        return int(total)

    def refundable_remainder(self, payment_id: str) -> int:
        with self._transaction() as session:
            payment = self._locked_payment(session, payment_id)
            return payment.amount - self._reserved(session, payment_id)

    def discard_unstarted_refund(self, refund_id: str) -> None:
        """Compensation when the refund's workflow could not be started: frees the amount
        and the idempotency key."""
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
                session.execute(
                    sa.delete(IdempotencyRecord).where(
                        col(IdempotencyRecord.scope) == REFUND_SCOPE,
                        col(IdempotencyRecord.resource_id) == refund_id,
                    )
                )

    def get_refund(self, refund_id: str) -> Refund | None:
        with self._transaction() as session:
            return session.get(Refund, refund_id)

    def complete_refund(
        self,
        refund_id: str,
        status: RefundStatus,
        *,
        method: str | None = None,
        gateway_transaction_id: str | None = None,
        failure_reason: str | None = None,
        failure_message: str | None = None,
    ) -> tuple[Refund, Payment]:
        """Move an initiated refund to processed or failed; a processed refund adds its amount
        to the payment's refunded_amount in the same transaction. Idempotent; a refused
        transition is logged and audited, then raised."""
        try:
            with self._transaction() as session:
                refund = session.get(Refund, refund_id)
                if refund is None:
                    raise NotFound(f"refund {refund_id} not found", field="refund_id")
                payment = self._locked_payment(session, refund.payment_id)
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
                refund.method = method
                refund.gateway_transaction_id = gateway_transaction_id
                refund.failure_reason = failure_reason
                refund.failure_message = failure_message
                refund.updated_at = now
                session.add(refund)
                if status == RefundStatus.PROCESSED:
                    payment.refunded_amount += refund.amount
                    payment.updated_at = now
                    session.add(payment)
                self._audit(
                    session,
                    payment,
                    previous,
                    status,
                    cause="workflow",
                    refund=refund,
                    detail=failure_reason or method,
                )
            return refund, payment
        except InvalidTransition as refused:
            assert refused.payment_id is not None
            self._record_refusal(
                refused.payment_id, refund_id, "refund", status, "workflow", refused.message
            )
            raise

    def list_refunds(
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
        query = _newest_first(query, col(Refund.created_at), col(Refund.refund_id), cursor)
        with self._transaction() as session:
            rows = list(session.exec(query.limit(limit + 1)).all())
        return _page(rows, limit, lambda r: encode_cursor(r.created_at, r.refund_id))

    def ping(self) -> None:
        with self._engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))


def _newest_first(
    query: SelectOfScalar[T],
    created: Mapped[Any],
    key: Mapped[Any],
    cursor: str | None,
) -> SelectOfScalar[T]:
    """Keyset pagination, newest first: stable under inserts, unlike OFFSET."""
    if cursor is not None:
        after_created, after_key = decode_cursor(cursor)
        query = query.where(
            sa.or_(created < after_created, sa.and_(created == after_created, key < after_key))
        )
    return query.order_by(created.desc(), key.desc())


def _page(rows: Sequence[T], limit: int, cursor_of: Callable[[T], str]) -> Page[T]:
    if len(rows) > limit:
        items = list(rows[:limit])
        return Page(items, cursor_of(items[-1]))
    return Page(list(rows), None)
