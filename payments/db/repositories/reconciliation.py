"""What the reconciliation reads and writes of its own: the payments and refunds that are
still open and nobody touched for a while (a page at a time, so that every one is reached),
whose a gateway sale can be, and its reports."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlalchemy.orm import Mapped
from sqlmodel import col, select

from payments.contracts import ReconciliationReportData
from payments.db.models import Payment, ReconciliationReport, Refund
from payments.db.repositories.base import Repository
from payments.db.repositories.pagination import Page, encode_cursor, oldest_first, page_of
from payments.vocabulary import PaymentStatus, RefundStatus

Row = TypeVar("Row", Payment, Refund)


class ReconciliationRepository(Repository):
    def open_payments(self, *, older_than: datetime, limit: int = 500) -> list[Payment]:
        """Pending payments last changed before ``older_than``, least recently changed first
        (at most ``limit``: the reconciliation runs of earlier versions)."""
        return self._untouched(
            Payment, col(Payment.payment_status) == PaymentStatus.PENDING, older_than, limit
        )

    def open_refunds(self, *, older_than: datetime, limit: int = 500) -> list[Refund]:
        """Initiated refunds last changed before ``older_than``, least recently changed first
        (at most ``limit``: the reconciliation runs of earlier versions)."""
        return self._untouched(
            Refund, col(Refund.refund_status) == RefundStatus.INITIATED, older_than, limit
        )

    def open_payments_page(
        self, *, older_than: datetime, cursor: str | None, limit: int
    ) -> Page[Payment]:
        """Pending payments last changed before ``older_than``, oldest first, after
        ``cursor``: page after page reaches every one, however many stay pending for days."""
        return self._page(
            Payment,
            col(Payment.payment_status) == PaymentStatus.PENDING,
            col(Payment.payment_id),
            lambda p: p.payment_id,
            older_than,
            cursor,
            limit,
        )

    def open_refunds_page(
        self, *, older_than: datetime, cursor: str | None, limit: int
    ) -> Page[Refund]:
        """Initiated refunds last changed before ``older_than``, oldest first, after
        ``cursor``."""
        return self._page(
            Refund,
            col(Refund.refund_status) == RefundStatus.INITIATED,
            col(Refund.refund_id),
            lambda r: r.refund_id,
            older_than,
            cursor,
            limit,
        )

    def payment_holding(self, transaction_id: str, *, other_than: str) -> str | None:
        """The payment, other than ``other_than``, that has this gateway transaction recorded
        as its own (whatever its status), if any."""
        with self._transaction() as session:
            return session.exec(
                select(Payment.payment_id).where(
                    Payment.transaction_id == transaction_id,
                    Payment.payment_id != other_than,
                )
            ).first()

    def open_rivals(self, payment: Payment) -> list[str]:
        """The other pending payments whose sale would look like ``payment``'s at the
        gateway: the same gateway order, the same amount charged in the same currency."""
        amount, currency = payment.charge
        with self._transaction() as session:
            return list(
                session.exec(
                    select(Payment.payment_id)
                    .where(
                        Payment.payment_id != payment.payment_id,
                        col(Payment.payment_status) == PaymentStatus.PENDING,
                        sa.func.coalesce(col(Payment.gateway_order_id), col(Payment.order_id))
                        == payment.gateway_order,
                        sa.func.coalesce(col(Payment.charged_amount), col(Payment.amount))
                        == amount,
                        sa.func.coalesce(col(Payment.charged_currency), col(Payment.currency))
                        == currency,
                    )
                    .order_by(col(Payment.created_at), col(Payment.payment_id))
                ).all()
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

    def _page(
        self,
        table: type[Row],
        is_open: ColumnElement[bool],
        key: Mapped[str],
        key_of: Callable[[Row], str],
        older_than: datetime,
        cursor: str | None,
        limit: int,
    ) -> Page[Row]:
        query = select(table).where(is_open, col(table.updated_at) < older_than)
        with self._transaction() as session:
            rows = session.exec(
                oldest_first(query, col(table.created_at), key, cursor).limit(limit + 1)
            ).all()

        return page_of(rows, limit, lambda row: encode_cursor(row.created_at, key_of(row)))

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
                        checked_payments=_or_count(
                            report.checked_payments, (f.kind == "payment" for f in findings)
                        ),
                        checked_refunds=_or_count(
                            report.checked_refunds, (f.kind == "refund" for f in findings)
                        ),
                        repaired=_or_count(report.repaired, (f.action != "none" for f in findings)),
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


def _or_count(given: int | None, matches: Iterable[bool]) -> int:
    return given if given is not None else sum(1 for m in matches if m)
