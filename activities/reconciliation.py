"""Reconciliation activities: compare stored state with the gateway and Temporal, repair.

Async (they ask Temporal whether an item's workflow still runs, and when it checks next); the
database and the braintree SDK are called on threads. Each repair is idempotent: recording an
outcome that is already recorded is a no-op, and a restarted refund reuses its gateway request
key.

A payment whose workflow runs is its workflow's business: it is told to check the gateway
only when its own next check is overdue. One whose workflow is gone takes a sale only when the
sale can be nobody else's: found by the transaction id recorded on it, or by its gateway order
and the amount actually charged (the converted amount for a converted payment), held by no
other payment, with no other open payment of that order and amount that could own it.
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
    OpenItemsPage,
    OpenItemsPageRequest,
    PaymentOutcome,
    PaymentReconciliation,
    PaymentToReconcile,
    ReconciliationReportData,
    ReconciliationRequest,
)
from payments.gateway.types import GatewayTransaction, PaymentGateway
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
    from payments.db.models import Payment

RECONCILIATION_CAUSE = "reconciliation"
CLOSED_BY_RECONCILIATION = "closed by reconciliation"


class PaymentWorkflowControl(Protocol):
    """What reconciliation asks of the workflows: implemented by
    ``workflows.client.PaymentWorkflows``, which the worker injects (a protocol, because
    workflow code imports this module and the client imports the workflows)."""

    async def payment_is_running(self, payment_id: str) -> bool: ...

    async def refund_is_running(self, refund_id: str) -> bool: ...

    async def nudge_payment(self, payment_id: str) -> bool: ...

    async def payment_next_check_at(self, payment_id: str) -> str | None:
        """When the running payment checks the gateway next by itself (ISO 8601), "" when it
        is not waiting to, None when its workflow did not answer (no worker)."""
        ...

    async def start_refund(
        self, refund_id: str, payment_id: str, *, created_at: datetime, restart: bool
    ) -> object: ...


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
    def list_open_items_page(self, request: OpenItemsPageRequest) -> OpenItemsPage:
        """One page of the open payments or refunds, oldest first, after the cursor."""
        older_than = datetime.fromisoformat(request.older_than)
        repository = self._db.reconciliation
        if request.kind == "payment":
            payments = repository.open_payments_page(
                older_than=older_than, cursor=request.cursor, limit=request.limit
            )
            return OpenItemsPage([p.payment_id for p in payments.items], payments.next_cursor)
        refunds = repository.open_refunds_page(
            older_than=older_than, cursor=request.cursor, limit=request.limit
        )
        return OpenItemsPage([r.refund_id for r in refunds.items], refunds.next_cursor)

    @activity.defn
    async def reconcile_payment(self, payment_id: str) -> PaymentReconciliation:
        """The reconciliation of runs started by earlier versions (one payment id in): the
        same as :meth:`reconcile_open_payment` by this worker's clock, with the grace period
        their request decodes with."""
        grace = ReconciliationRequest(min_age_seconds=0).overdue_after_seconds
        return await self.reconcile_open_payment(
            PaymentToReconcile(payment_id, datetime.now(UTC).isoformat(), grace)
        )

    @activity.defn
    async def reconcile_open_payment(self, item: PaymentToReconcile) -> PaymentReconciliation:
        """Returns the closed payment for the workflow to announce. Idempotent: a retry after
        the repair finds the payment closed by reconciliation and returns it again."""
        payment_id = item.payment_id
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
            return await self._leave_or_nudge(payment_id, item)

        # Nothing will finish this payment: find out from the gateway what really happened.
        if payment.transaction_id is not None:
            sales = [await asyncio.to_thread(self._gateway.find, payment.transaction_id)]
        else:
            found = await asyncio.to_thread(
                self._gateway.find_sales_by_order_id, payment.gateway_order
            )
            sales, disputed = await asyncio.to_thread(self._sales_of, payment, found)
            if disputed is not None:
                return _found(payment_id, disputed, "none")
        approved = [s for s in sales if s.status in APPROVED_STATUSES]
        if approved and approved[0].status == "authorized" and payment.fraud_decision == "review":
            # Held for review, and nothing will ever capture it: released, as the review
            # deadline would have.
            return await self._void_held(payment_id, approved[0])
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

    async def _void_held(self, payment_id: str, sale: GatewayTransaction) -> PaymentReconciliation:
        voided = await asyncio.to_thread(
            lambda: self._gateway.void(
                request_key=f"void-{payment_id}", transaction_id=sale.transaction_id
            )
        )
        if not voided.succeeded:
            return _found(
                payment_id, f"workflow gone, held sale not voided: {voided.error_code}", "none"
            )
        stored = await asyncio.to_thread(
            lambda: self._db.payments.complete(
                PaymentOutcome(
                    payment_id,
                    succeeded=False,
                    transaction_id=sale.transaction_id,
                    gateway_status="voided",
                    failure_reason="fraud_declined",
                    failure_message=f"{CLOSED_BY_RECONCILIATION}: held for review, "
                    "the authorization was voided",
                ),
                cause=RECONCILIATION_CAUSE,
            )
        )
        return PaymentReconciliation(
            Finding("payment", payment_id, "held for review, workflow gone", "voided"),
            payment_snapshot(stored),
        )

    async def _leave_or_nudge(
        self, payment_id: str, item: PaymentToReconcile
    ) -> PaymentReconciliation:
        """A running payment checks the gateway by itself: a signal would only add to its
        history. Nudged only when its own check is overdue by more than the grace period."""
        next_check_at = await self._workflows.payment_next_check_at(payment_id)
        if next_check_at is None:
            # No worker answers (down, or overloaded): a signal would wait for it just the
            # same, and its timers fire when it is back.
            return _found(payment_id, "running, progress unknown", "none")
        if not next_check_at:
            return _found(payment_id, "running, not waiting for the gateway", "none")
        due = datetime.fromisoformat(next_check_at)
        overdue_after = due + timedelta(seconds=item.overdue_after_seconds)
        if datetime.fromisoformat(item.as_of) <= overdue_after:
            return _found(payment_id, f"running, next check at {next_check_at}", "none")
        if not await self._workflows.nudge_payment(payment_id):
            return _found(payment_id, "workflow ended meanwhile", "none")
        return _found(payment_id, f"running, overdue since {next_check_at}", "nudged")

    def _sales_of(
        self, payment: Payment, found: list[GatewayTransaction]
    ) -> tuple[list[GatewayTransaction], str | None]:
        """The sales of ``found`` (the gateway order's) that are this payment's, or why one
        that may be cannot be told apart from another payment's.

        A sale shows its order and amount, not the request key it was made with: it is this
        payment's when it is in the amount and currency charged, no other payment has it
        recorded, and no other open payment of the order was charged the same."""
        amount, currency = payment.charge
        charged = Money(amount, currency)
        candidates = [
            s
            for s in found
            if s.amount == charged
            and self._db.reconciliation.payment_holding(
                s.transaction_id, other_than=payment.payment_id
            )
            is None
        ]
        rivals = self._db.reconciliation.open_rivals(payment) if candidates else []
        if not rivals:
            return candidates, None
        approved = [s for s in candidates if s.status in APPROVED_STATUSES]
        if approved:
            sale, rival = approved[0].transaction_id, rivals[0]
            return [], f"workflow gone, sale {sale} could be payment {rival}'s"
        # Only refused sales, which may be the other payment's: none is recorded on this one
        # (nothing was charged either way).
        return [], None

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
