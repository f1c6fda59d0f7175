"""The rows payment analytics reads: each payment created in a window, with the moment it
became final (its first accepted success or failure in the audit trail)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col

from payments.analytics import PaymentFacts
from payments.db.models import AuditEvent, Payment, UTCDateTime
from payments.db.repositories.base import Repository
from payments.vocabulary import PaymentStatus

FINAL = (PaymentStatus.SUCCESS, PaymentStatus.FAILURE)


class AnalyticsRepository(Repository):
    def payments_between(
        self, start: datetime, end: datetime, merchant_id: str | None
    ) -> list[PaymentFacts]:
        """Payments created in [start, end), of ``merchant_id`` (None: every merchant's)."""
        finalized = (
            sa.select(
                col(AuditEvent.payment_id).label("payment_id"),
                # Typed, so that SQLite's text comes back as an aware datetime too.
                sa.func.min(col(AuditEvent.occurred_at), type_=UTCDateTime()).label("at"),
            )
            .where(
                col(AuditEvent.subject) == "payment",
                col(AuditEvent.accepted).is_(True),
                col(AuditEvent.to_status).in_(FINAL),
            )
            .group_by(col(AuditEvent.payment_id))
            .subquery()
        )
        query = (
            sa.select(
                col(Payment.created_at),
                col(Payment.payment_status),
                col(Payment.payment_method),
                col(Payment.currency),
                col(Payment.amount),
                col(Payment.refunded_amount),
                col(Payment.failure_reason),
                col(Payment.processor_response_code),
                finalized.c.at,
            )
            .outerjoin(finalized, finalized.c.payment_id == col(Payment.payment_id))
            .where(col(Payment.created_at) >= start, col(Payment.created_at) < end)
        )
        if merchant_id is not None:
            query = query.where(col(Payment.merchant_id) == merchant_id)
        with self._reading() as session:
            return [PaymentFacts(*row) for row in session.execute(query)]
