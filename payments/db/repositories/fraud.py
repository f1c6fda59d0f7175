"""What the fraud rules read and write: velocity counts made in the database, the blocklist,
the verdicts kept on payments, and the payments held for review."""

from __future__ import annotations

import uuid
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


def _count_since(since: datetime, *extra: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    created = col(Payment.created_at)
    return sa.func.coalesce(
        sa.func.sum(sa.case((sa.and_(created >= since, *extra), 1), else_=0)), 0
    )


class FraudRepository(Repository):
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
        day_ago = now - timedelta(days=1)
        others = col(Payment.payment_id) != payment_id
        with self._reading() as session:
            user = session.execute(
                sa.select(
                    _count_since(now - timedelta(minutes=10)),
                    _count_since(now - timedelta(hours=1)),
                    sa.func.count(),
                    sa.func.coalesce(
                        sa.func.sum(
                            sa.case(
                                (col(Payment.currency) == currency, col(Payment.amount)), else_=0
                            )
                        ),
                        0,
                    ),
                    _count_since(
                        now - repeat_window,
                        col(Payment.amount) == amount_minor,
                        col(Payment.currency) == currency,
                        col(Payment.payment_method) == method,
                    ),
                ).where(
                    col(Payment.merchant_id) == merchant_id,
                    col(Payment.user_id) == user_id,
                    col(Payment.created_at) >= day_ago,
                    col(Payment.created_at) <= now,
                    others,
                )
            ).one()
            first = session.execute(
                sa.select(col(Payment.created_at))
                .where(
                    col(Payment.merchant_id) == merchant_id,
                    col(Payment.user_id) == user_id,
                    others,
                )
                .order_by(col(Payment.created_at))
                .limit(1)
            ).scalar_one_or_none()
            by_method = (0, 0, 0)
            if fingerprint is not None:
                row = session.execute(
                    sa.select(
                        _count_since(now - timedelta(hours=1)),
                        sa.func.count(),
                        sa.func.count(
                            sa.distinct(
                                sa.case(
                                    (col(Payment.user_id) != user_id, col(Payment.user_id)),
                                    else_=None,
                                )
                            )
                        ),
                    ).where(
                        col(Payment.payment_method_fingerprint) == fingerprint,
                        col(Payment.created_at) >= day_ago,
                        col(Payment.created_at) <= now,
                        others,
                    )
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

    def blocklisted(
        self, *, user_id: str, fingerprint: str | None, card_bin: str | None
    ) -> list[BlocklistEntry]:
        """The entries matching the user, the fingerprint or the BIN (a listed 6-digit BIN
        matches the card's first six digits, an 8-digit one its first eight)."""
        wanted = [sa.and_(col(BlocklistEntry.kind) == "user", col(BlocklistEntry.value) == user_id)]
        if fingerprint:
            wanted.append(
                sa.and_(
                    col(BlocklistEntry.kind) == "fingerprint",
                    col(BlocklistEntry.value) == fingerprint,
                )
            )
        if card_bin:
            wanted.append(
                sa.and_(
                    col(BlocklistEntry.kind) == "bin",
                    col(BlocklistEntry.value).in_({card_bin[:6], card_bin[:8]}),
                )
            )
        with self._reading() as session:
            return list(session.exec(select(BlocklistEntry).where(sa.or_(*wanted))))

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
