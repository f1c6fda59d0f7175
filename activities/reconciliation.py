"""Reconciliation activities: compare stored state with the gateway and Temporal, repair.

Async (they ask Temporal whether an item's workflow still runs); the database and the
braintree SDK are called on threads. Each repair is idempotent: recording an outcome that is
already recorded is a no-op, and a restarted refund reuses its gateway request key.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from temporalio import activity

from activities.snapshots import payment_snapshot
from payments.contracts import (
    Finding,
    OpenItems,
    PaymentOutcome,
    PaymentReconciliation,
    ReconciliationReportData,
    ReconciliationRequest,
)
from payments.gateway.types import PaymentGateway
from payments.money import Money
from payments.vocabulary import (
    APPROVED_STATUSES,
    PAID_STATUSES,
    SETTLEMENT_FAILED_STATUSES,
    PaymentStatus,
    RefundStatus,
)

if TYPE_CHECKING:
    from payments.db.database import Database

RECONCILIATION_CAUSE = "reconciliation"
CLOSED_BY_RECONCILIATION = "closed by reconciliation"


class PaymentWorkflowControl(Protocol):
    """What reconciliation asks of the workflows: implemented by
    ``workflows.client.PaymentWorkflows``, which the worker injects (a protocol, because
    workflow code imports this module and the client imports the workflows)."""

    async def payment_is_running(self, payment_id: str) -> bool: ...

    async def refund_is_running(self, refund_id: str) -> bool: ...

    async def nudge_payment(self, payment_id: str) -> bool: ...

    async def start_refund(
        self, refund_id: str, payment_id: str, *, created_at: datetime, restart: bool
    ) -> None: ...


class ReconciliationActivities:
    def __init__(
        self, db: Database, gateway: PaymentGateway, workflows: PaymentWorkflowControl
    ) -> None:
        self._db = db
        self._gateway = gateway
        self._workflows = workflows

    @activity.defn
    def list_open_items(self, request: ReconciliationRequest) -> OpenItems:
        older_than = datetime.now(UTC) - timedelta(seconds=request.min_age_seconds)
        return OpenItems(
            payment_ids=[
                p.payment_id for p in self._db.reconciliation.open_payments(older_than=older_than)
            ],
            refund_ids=[
                r.refund_id for r in self._db.reconciliation.open_refunds(older_than=older_than)
            ],
        )

    @activity.defn
    async def reconcile_payment(self, payment_id: str) -> PaymentReconciliation:
        """Returns the closed payment for the workflow to announce. Idempotent: a retry after
        the repair finds the payment closed by reconciliation and returns it again."""
        payment = await asyncio.to_thread(self._db.payments.get, payment_id)
        if payment is None:
            return _found(payment_id, "not found", "none")
        if payment.payment_status != PaymentStatus.PENDING:
            closed_here = await self._closed_by_reconciliation(payment_id)
            return PaymentReconciliation(
                Finding("payment", payment_id, "no longer pending", "none"),
                payment_snapshot(payment) if closed_here else None,
            )
        if await self._workflows.payment_is_running(payment_id):
            await self._workflows.nudge_payment(payment_id)
            return _found(payment_id, "pending, workflow running", "nudged")

        # Nothing will finish this payment: find out from the gateway what really happened.
        amount = Money(payment.amount, payment.currency)
        if payment.transaction_id is not None:
            sales = [await asyncio.to_thread(self._gateway.find, payment.transaction_id)]
        else:
            found = await asyncio.to_thread(
                self._gateway.find_sales_by_order_id, payment.gateway_order
            )
            sales = [s for s in found if s.amount == amount]
        approved = [s for s in sales if s.status in APPROVED_STATUSES]
        if approved and approved[0].status not in PAID_STATUSES:
            return _found(payment_id, f"workflow gone, sale {approved[0].status}", "none")
        if approved:
            sale = approved[0]
            stored = await asyncio.to_thread(
                lambda: self._db.payments.complete(
                    PaymentOutcome(
                        payment_id,
                        succeeded=True,
                        transaction_id=sale.transaction_id,
                        processor_response_code=sale.processor_response_code,
                        gateway_status=sale.status,
                        instrument=sale.instrument,
                    ),
                    cause=RECONCILIATION_CAUSE,
                )
            )
            action = "recorded_success"
        else:
            reason = sales[0].status if sales else "abandoned"
            stored = await asyncio.to_thread(
                lambda: self._db.payments.complete(
                    PaymentOutcome(
                        payment_id,
                        succeeded=False,
                        transaction_id=sales[0].transaction_id if sales else None,
                        failure_reason=reason
                        if reason in SETTLEMENT_FAILED_STATUSES
                        else "abandoned",
                        failure_message=f"{CLOSED_BY_RECONCILIATION}: "
                        + (f"the gateway reports {reason}" if sales else "no sale at the gateway"),
                    ),
                    cause=RECONCILIATION_CAUSE,
                )
            )
            action = "recorded_failure"
        return PaymentReconciliation(
            Finding("payment", payment_id, "pending, workflow gone", action),
            payment_snapshot(stored),
        )

    async def _closed_by_reconciliation(self, payment_id: str) -> bool:
        trail = await asyncio.to_thread(self._db.audit.trail, payment_id)
        return any(e.cause == RECONCILIATION_CAUSE and e.accepted for e in trail)

    @activity.defn
    async def reconcile_refund(self, refund_id: str) -> Finding:
        refund = await asyncio.to_thread(self._db.refunds.get, refund_id)
        if refund is None or refund.refund_status != RefundStatus.INITIATED:
            return Finding("refund", refund_id, "no longer initiated", "none")
        if await self._workflows.refund_is_running(refund_id):
            return Finding("refund", refund_id, "initiated, workflow running", "none")
        await self._workflows.start_refund(
            refund_id, refund.payment_id, created_at=refund.created_at, restart=True
        )
        return Finding("refund", refund_id, "initiated, workflow gone", "restarted")

    @activity.defn
    def save_reconciliation_report(self, report: ReconciliationReportData) -> str:
        self._db.reconciliation.save_report(report)
        return report.report_id


def _found(payment_id: str, found: str, action: str) -> PaymentReconciliation:
    return PaymentReconciliation(Finding("payment", payment_id, found, action))
