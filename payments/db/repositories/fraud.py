"""What the fraud rules read and write: velocity counts made in the database, the blocklist,
the verdicts kept on payments, and the payments held for review."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from payments.contracts import FraudRecord, ReviewDecision
from payments.db import columns
from payments.db.models import AuditEvent, BlocklistEntry, Payment, utcnow
from payments.db.repositories.audit import record_transition
from payments.db.repositories.base import Repository, locked_payment
from payments.errors import Conflict, NotFound
from payments.vocabulary import FraudOutcome, PaymentStatus


@dataclass(frozen=True, slots=True)
class Velocity:
    """Counts of a user's and a payment method's payments before ``now`` (this one
    excluded)."""

    user_10m: int
    user_1h: int
    user_24h: int
    user_24h_amount_minor: int  # in the payment's currency
    user_is_new: bool
    repeats: int
    fingerprint_1h: int
    fingerprint_24h: int
    fingerprint_24h_users: int
    first_payment_at: datetime | None


# --- the fraud step's reads ---------------------------------------------------------------------
# Built once: constructing these expressions cost more per check than running them (SQLAlchemy
# compiles a statement once and caches it; building the expression tree is Python each time).
# Values are bound at execution.
_P = Payment.__table__  # type: ignore[attr-defined]
_B = BlocklistEntry.__table__  # type: ignore[attr-defined]


def _count_since(since: str, *extra: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    created = _P.c.created_at
    return sa.func.coalesce(
        sa.func.sum(sa.case((sa.and_(created >= sa.bindparam(since), *extra), 1), else_=0)), 0
    )


_THIS_PAYMENT = sa.select(_P.c.merchant_id, _P.c.created_at).where(
    _P.c.payment_id == sa.bindparam("payment_id")
)
_OPEN_FOR_ORDER = (
    sa.select(_P.c.payment_id, _P.c.payment_status)
    .where(
        _P.c.merchant_id == sa.bindparam("merchant_id"),
        _P.c.order_id == sa.bindparam("order_id"),
        _P.c.payment_id != sa.bindparam("payment_id"),
        _P.c.payment_status.in_([PaymentStatus.PENDING.value, PaymentStatus.SUCCESS.value]),
    )
    .order_by(_P.c.created_at)
    .limit(1)
)
# Of two payments racing for one order the first proceeds, the second is the duplicate.
_EARLIER_OPEN_FOR_ORDER = _OPEN_FOR_ORDER.where(
    sa.or_(
        _P.c.created_at < sa.bindparam("created_at"),
        sa.and_(
            _P.c.created_at == sa.bindparam("created_at"),
            _P.c.payment_id < sa.bindparam("payment_id"),
        ),
    )
)
# A listed 6-digit BIN matches a card's first six digits, an 8-digit one its first eight;
# an absent fingerprint or BIN is bound as NULL, which equals nothing.
_BLOCKLISTED = sa.select(_B.c.entry_id, _B.c.kind, _B.c.value, _B.c.reason).where(
    sa.or_(
        sa.and_(_B.c.kind == "user", _B.c.value == sa.bindparam("user_id")),
        sa.and_(_B.c.kind == "fingerprint", _B.c.value == sa.bindparam("fingerprint")),
        sa.and_(
            _B.c.kind == "bin",
            _B.c.value.in_([sa.bindparam("bin_6"), sa.bindparam("bin_8")]),
        ),
    )
)
_USER_COUNTS = sa.select(
    _count_since("since_10m"),
    _count_since("since_1h"),
    sa.func.count(),
    sa.func.coalesce(
        sa.func.sum(sa.case((_P.c.currency == sa.bindparam("currency"), _P.c.amount), else_=0)),
        0,
    ),
    _count_since(
        "repeat_since",
        _P.c.amount == sa.bindparam("amount"),
        _P.c.currency == sa.bindparam("currency"),
        _P.c.payment_method == sa.bindparam("method"),
    ),
).where(
    _P.c.merchant_id == sa.bindparam("merchant_id"),
    _P.c.user_id == sa.bindparam("user_id"),
    _P.c.created_at >= sa.bindparam("since_24h"),
    _P.c.created_at <= sa.bindparam("now"),
    _P.c.payment_id != sa.bindparam("payment_id"),
)
_USER_FIRST_PAYMENT = (
    sa.select(_P.c.created_at)
    .where(
        _P.c.merchant_id == sa.bindparam("merchant_id"),
        _P.c.user_id == sa.bindparam("user_id"),
        _P.c.payment_id != sa.bindparam("payment_id"),
    )
    .order_by(_P.c.created_at)
    .limit(1)
)
_METHOD_COUNTS = sa.select(
    _count_since("since_1h"),
    sa.func.count(),
    sa.func.count(
        sa.distinct(sa.case((_P.c.user_id != sa.bindparam("user_id"), _P.c.user_id), else_=None))
    ),
).where(
    _P.c.payment_method_fingerprint == sa.bindparam("fingerprint"),
    _P.c.created_at >= sa.bindparam("since_24h"),
    _P.c.created_at <= sa.bindparam("now"),
    _P.c.payment_id != sa.bindparam("payment_id"),
)


@dataclass(frozen=True, slots=True)
class ThisPayment:
    merchant_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OpenPayment:
    """An earlier payment of the order that is pending or succeeded."""

    payment_id: str
    payment_status: str


@dataclass(frozen=True, slots=True)
class BlockMatch:
    entry_id: str
    kind: str
    value: str
    reason: str


class FraudReads:
    """The fraud step's reads within one read-only transaction (FraudRepository.reads):
    one connection checked out and one transaction for all of them, not one each (SQLite
    reads them from one snapshot; PostgreSQL, read committed, each from the last commit)."""

    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    def payment(self, payment_id: str) -> ThisPayment | None:
        row = self._connection.execute(_THIS_PAYMENT, {"payment_id": payment_id}).first()
        return ThisPayment(row.merchant_id, row.created_at) if row is not None else None

    def earlier_open_payment(
        self, order_id: str, *, this: ThisPayment | None, payment_id: str, merchant_id: str
    ) -> OpenPayment | None:
        """The duplicate check: an earlier payment of the merchant for the order, pending or
        succeeded (order ids are the merchant's; two merchants may share one). Earlier by
        creation, then id, than this payment when it is recorded."""
        params: dict[str, object] = {
            "merchant_id": merchant_id,
            "order_id": order_id,
            "payment_id": payment_id,
        }
        statement = _OPEN_FOR_ORDER
        if this is not None:
            statement = _EARLIER_OPEN_FOR_ORDER
            params["created_at"] = this.created_at
        row = self._connection.execute(statement, params).first()
        return OpenPayment(row.payment_id, row.payment_status) if row is not None else None

    def blocklisted(
        self, *, user_id: str, fingerprint: str | None, card_bin: str | None
    ) -> list[BlockMatch]:
        """The entries matching the user, the fingerprint or the BIN."""
        rows = self._connection.execute(
            _BLOCKLISTED,
            {
                "user_id": user_id,
                "fingerprint": fingerprint or None,
                "bin_6": card_bin[:6] if card_bin else None,
                "bin_8": card_bin[:8] if card_bin else None,
            },
        )
        return [BlockMatch(r.entry_id, r.kind, r.value, r.reason) for r in rows]

    def velocity(
        self,
        *,
        payment_id: str,
        merchant_id: str,
        user_id: str,
        amount_minor: int,
        currency: str,
        method: str,
        fingerprint: str | None,
        now: datetime,
        repeat_window: timedelta,
    ) -> Velocity:
        """Two indexed range reads (the user's last day, the method's last day) and the
        user's first payment; each a handful of rows for an honest user."""
        common = {
            "payment_id": payment_id,
            "user_id": user_id,
            "since_1h": now - timedelta(hours=1),
            "since_24h": now - timedelta(days=1),
            "now": now,
        }
        user = self._connection.execute(
            _USER_COUNTS,
            {
                **common,
                "merchant_id": merchant_id,
                "since_10m": now - timedelta(minutes=10),
                "repeat_since": now - repeat_window,
                "amount": amount_minor,
                "currency": currency,
                "method": method,
            },
        ).one()
        first = self._connection.execute(
            _USER_FIRST_PAYMENT,
            {"merchant_id": merchant_id, "user_id": user_id, "payment_id": payment_id},
        ).scalar_one_or_none()
        by_method = (0, 0, 0)
        if fingerprint is not None:
            row = self._connection.execute(
                _METHOD_COUNTS, {**common, "fingerprint": fingerprint}
            ).one()
            by_method = (int(row[0]), int(row[1]), int(row[2]))
        return Velocity(
            user_10m=int(user[0]),
            user_1h=int(user[1]),
            user_24h=int(user[2]),
            user_24h_amount_minor=int(user[3]),
            user_is_new=first is None,
            repeats=int(user[4]),
            fingerprint_1h=by_method[0],
            fingerprint_24h=by_method[1],
            fingerprint_24h_users=by_method[2],
            first_payment_at=first,
        )


class FraudRepository(Repository):
    @contextmanager
    def reads(self) -> Iterator[FraudReads]:
        """One read-only transaction for the fraud step's reads (on SQLite it begins
        DEFERRED: a snapshot of the last commit, not queued behind a writer)."""
        with self._reader.begin() as connection:
            yield FraudReads(connection)

    # --- the blocklist -------------------------------------------------------------------------
    def block(
        self, kind: str, value: str, reason: str, *, created_by: str | None
    ) -> BlocklistEntry:
        """Add an entry; Conflict (naming the existing entry) when it is listed already."""
        entry = BlocklistEntry(
            entry_id=str(uuid.uuid4()),
            kind=kind,
            value=value,
            reason=reason[: columns.REASON],
            created_by=created_by,
        )
        try:
            with self._transaction() as session:
                session.add(entry)
        except IntegrityError:
            existing = self._entry(kind, value)
            if existing is None:
                raise
            raise Conflict(
                f"{kind} {value} is blocklisted already (entry {existing.entry_id})",
                field="value",
            ) from None
        return entry

    def _entry(self, kind: str, value: str) -> BlocklistEntry | None:
        with self._reading() as session:
            return session.exec(
                select(BlocklistEntry).where(
                    BlocklistEntry.kind == kind, BlocklistEntry.value == value
                )
            ).first()

    def blocklist(self) -> list[BlocklistEntry]:
        with self._reading() as session:
            return list(
                session.exec(
                    select(BlocklistEntry).order_by(
                        col(BlocklistEntry.created_at), col(BlocklistEntry.entry_id)
                    )
                )
            )

    def unblock(self, entry_id: str) -> None:
        with self._transaction() as session:
            entry = session.get(BlocklistEntry, entry_id)
            if entry is None:
                raise NotFound(f"blocklist entry {entry_id} not found", field="entry_id")
            session.delete(entry)

    # --- verdicts and reviews ------------------------------------------------------------------
    def record_verdict(self, record: FraudRecord) -> Payment:
        """Keep the verdict on the payment and in its audit trail (once: a retried step
        writes the same)."""
        verdict = record.verdict
        with self._transaction() as session:
            payment = locked_payment(session, record.payment_id)
            first_time = payment.fraud_decision is None
            payment.fraud_decision = verdict.decision
            payment.fraud_score = verdict.score
            payment.fraud_reasons = [
                {"rule": reason.rule, "message": reason.message} for reason in verdict.reasons
            ]
            payment.fraud_model_score = verdict.model_score
            payment.fraud_model_version = verdict.model_version
            payment.payment_method_fingerprint = record.fingerprint
            payment.card_bin = record.card_bin
            payment.review_deadline_at = (
                datetime.fromisoformat(record.review_deadline_at)
                if record.review_deadline_at
                else None
            )
            payment.updated_at = utcnow()
            session.add(payment)
            if first_time:
                rules = "; ".join(f"{r.rule}: {r.message}" for r in verdict.reasons)
                record_transition(
                    session,
                    payment,
                    payment.payment_status,
                    payment.payment_status,
                    cause="fraud_check",
                    detail=f"{verdict.decision} (score {verdict.score})"
                    + (f": {rules}" if rules else ""),
                )
        return payment

    def record_review(self, payment_id: str, decision: ReviewDecision) -> None:
        """An operator's decision on a held payment, in its audit trail."""
        cause = f"review:{decision.decision}"
        with self._transaction() as session:
            payment = locked_payment(session, payment_id)
            recorded = session.exec(
                select(AuditEvent.audit_id).where(
                    AuditEvent.payment_id == payment_id, col(AuditEvent.cause).startswith("review:")
                )
            ).first()
            if recorded is not None:  # a retried step: kept once
                return
            note = f": {decision.note}" if decision.note else ""
            record_transition(
                session,
                payment,
                payment.payment_status,
                payment.payment_status,
                cause=cause,
                detail=f"by key {decision.reviewed_by or 'unknown'}{note}",
            )

    def awaiting_review(self, *, limit: int) -> list[Payment]:
        """Payments held for review, the nearest deadline first."""
        with self._reading() as session:
            return list(
                session.exec(
                    select(Payment)
                    .where(
                        Payment.fraud_decision == FraudOutcome.REVIEW,
                        Payment.payment_status == PaymentStatus.PENDING,
                    )
                    .order_by(col(Payment.review_deadline_at), col(Payment.payment_id))
                    .limit(limit)
                )
            )

    def review_queue(self) -> tuple[int, datetime | None]:
        """How many payments are held for review, and the nearest deadline among them."""
        with self._reading() as session:
            count, nearest = session.execute(
                sa.select(sa.func.count(), sa.func.min(col(Payment.review_deadline_at))).where(
                    col(Payment.fraud_decision) == FraudOutcome.REVIEW,
                    col(Payment.payment_status) == PaymentStatus.PENDING,
                )
            ).one()
        if isinstance(nearest, datetime) and nearest.tzinfo is None:
            nearest = nearest.replace(tzinfo=UTC)  # SQLite's MIN gives the column's raw value
        return int(count), nearest
