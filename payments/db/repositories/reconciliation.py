"""What the reconciliation reads and writes of its own: the payments and refunds that are
still open and nobody touched for a while, and its reports."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import TypeVar

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Mapped
from sqlmodel import col, select

from payments.contracts import ReconciliationReportData
from payments.db.models import Payment, ReconciliationReport, Refund
from payments.db.repositories.base import Repository
from payments.vocabulary import PaymentStatus, RefundStatus

Row = TypeVar("Row", Payment, Refund)


class ReconciliationRepository(Repository):
    def open_payments(self, *, older_than: datetime, limit: int = 500) -> list[Payment]:
        """Pending payments last changed before ``older_than``, least recently changed first."""
        return self._untouched(
            Payment, col(Payment.payment_status) == PaymentStatus.PENDING, older_than, limit
        )

    def open_refunds(self, *, older_than: datetime, limit: int = 500) -> list[Refund]:
        """Initiated refunds last changed before ``older_than``, least recently changed first."""
        return self._untouched(
            Refund, col(Refund.refund_status) == RefundStatus.INITIATED, older_than, limit
        )

    def _untouched(
        self, table: type[Row], is_open: ColumnElement[bool], older_than: datetime, limit: int
    ) -> list[Row]:
        updated_at: Mapped[datetime] = col(table.updated_at)
        with self._transaction() as session:
            return list(
                session.exec(
                    select(table)
                    .where(is_open, updated_at < older_than)
                    .order_by(updated_at)
                    .limit(limit)
                ).all()
            )

    def save_report(self, report: ReconciliationReportData) -> None:
        """Idempotent: a report already saved (same id) is kept as it is."""
        findings = report.findings
        with self._transaction() as session:
            if session.get(ReconciliationReport, report.report_id) is None:
                session.add(
                    ReconciliationReport(
                        report_id=report.report_id,
                        started_at=datetime.fromisoformat(report.started_at),
                        finished_at=datetime.fromisoformat(report.finished_at),
                        checked_payments=sum(1 for f in findings if f.kind == "payment"),
                        checked_refunds=sum(1 for f in findings if f.kind == "refund"),
                        repaired=sum(1 for f in findings if f.action != "none"),
                        findings=json.dumps([asdict(f) for f in findings]),
                    )
                )

    def latest_report(self) -> ReconciliationReport | None:
        with self._transaction() as session:
            return session.exec(
                select(ReconciliationReport)
                .order_by(col(ReconciliationReport.started_at).desc())
                .limit(1)
            ).first()
