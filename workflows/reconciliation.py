"""ReconciliationWorkflow: compare every non-terminal payment and refund with the gateway and
repair what differs. A Temporal Schedule (``reconciliation-{task_queue}``, created by the worker)
starts a pass every few minutes; its report is stored and served by GET /reconciliation/latest.

A pass pages through the open items, oldest first (payments, then refunds), so that every one
is reached however many stay open for days, and reconciles a page's items a few at a time.
Each item is one activity (its own retries; one failing item does not stop the others):
- a pending payment whose workflow still runs is left to it (it checks the gateway on its own
  schedule), unless its own next check is overdue: then it is told to check now;
- a pending payment whose workflow is gone gets the gateway's outcome recorded (and
  announced), or is failed as abandoned when the gateway never saw a sale of its own;
- an initiated refund whose workflow is gone is started again (its gateway calls carry the
  refund's request key, so the refund cannot happen twice).
A pass continues as new before a page could take its run's history past a bound, carrying
its cursor and what it found: one report covers the whole pass. Then housekeeping: idempotency
keys past their expiry are deleted (a lookup ignores them already; this only keeps the table
small).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.events import EventActivities
    from activities.ledger import LedgerActivities
    from activities.reconciliation import ReconciliationActivities
    from payments.contracts import (
        Finding,
        OpenItemsPage,
        OpenItemsPageRequest,
        PaymentToReconcile,
        PurgeRequest,
        ReconciliationPass,
        ReconciliationReportData,
        ReconciliationRequest,
    )

from workflows.options import EVENTS, GATEWAY, LEDGER

# Runs of earlier versions read at most 500 items of each kind, one at a time, in one run.
PAGED_RECONCILIATION = "reconciliation-paged-pass"
# A run continues as new before a page that could take its history past this many events,
# far below Temporal's 10,240-event warning.
RUN_HISTORY_BUDGET = 1500
# The most events one item can add: its activity and its announcement (scheduled, started,
# completed each), and a workflow task (three events) after each of them.
EVENTS_PER_ITEM = 12
MAX_PAGE_SIZE = 100
# The report lists this many findings (repairs and nudges first in line: the routine "left
# alone" ones only up to ROUTINE_LISTED); it counts them all.
MAX_LISTED = 1000
ROUTINE_LISTED = 500
PAYMENTS, REFUNDS, DONE = "payment", "refund", "done"


@workflow.defn
class ReconciliationWorkflow:
    @workflow.run
    async def run(self, request: ReconciliationRequest) -> ReconciliationReportData:
        if not workflow.patched(PAGED_RECONCILIATION):
            return await self._single_run(request)
        page_size = max(1, min(request.page_size, MAX_PAGE_SIZE))
        progress = request.resume or ReconciliationPass(
            report_id=workflow.info().run_id,
            started_at=workflow.now().isoformat(),
            older_than=(workflow.now() - timedelta(seconds=request.min_age_seconds)).isoformat(),
        )
        pages_in_this_run = 0
        while progress.kind != DONE:
            if pages_in_this_run > 0 and _history_nearly_full(page_size):
                workflow.continue_as_new(replace(request, resume=progress))
            page = await workflow.execute_activity_method(
                ReconciliationActivities.list_open_items_page,
                OpenItemsPageRequest(
                    progress.kind, progress.older_than, progress.cursor, page_size
                ),
                **LEDGER,
            )
            findings = await self._reconcile_page(progress.kind, page, request)
            progress = _advanced(progress, page, findings)
            pages_in_this_run += 1

        report = _report(progress, finished_at=workflow.now().isoformat())
        await workflow.execute_activity_method(
            ReconciliationActivities.save_reconciliation_report, report, **LEDGER
        )
        await workflow.execute_activity_method(
            LedgerActivities.purge_expired_idempotency_keys, PurgeRequest(), **LEDGER
        )
        return report

    async def _reconcile_page(
        self, kind: str, page: OpenItemsPage, request: ReconciliationRequest
    ) -> list[Finding]:
        """Every item of the page, at most ``request.concurrency`` at a time; the findings in
        the page's order."""
        slots = asyncio.Semaphore(max(1, request.concurrency))

        async def payment(payment_id: str) -> Finding:
            async with slots:
                try:
                    reconciled = await workflow.execute_activity_method(
                        ReconciliationActivities.reconcile_open_payment,
                        PaymentToReconcile(
                            payment_id, workflow.now().isoformat(), request.overdue_after_seconds
                        ),
                        **GATEWAY,
                    )
                except ActivityError as failed:
                    return _unreconciled(PAYMENTS, payment_id, failed)
                if reconciled.closed is not None:
                    await workflow.execute_activity_method(
                        EventActivities.publish_payment_status, reconciled.closed, **EVENTS
                    )
                return reconciled.finding

        async def refund(refund_id: str) -> Finding:
            async with slots:
                try:
                    return await workflow.execute_activity_method(
                        ReconciliationActivities.reconcile_refund, refund_id, **GATEWAY
                    )
                except ActivityError as failed:
                    return _unreconciled(REFUNDS, refund_id, failed)

        reconcile = payment if kind == PAYMENTS else refund
        return list(await asyncio.gather(*(reconcile(item) for item in page.ids)))

    async def _single_run(self, request: ReconciliationRequest) -> ReconciliationReportData:
        """The pass of earlier versions, kept for their runs in flight and their histories:
        the 500 least recently changed items of each kind, one at a time, in one run."""
        started = workflow.now()
        items = await workflow.execute_activity_method(
            ReconciliationActivities.list_open_items, request, **LEDGER
        )
        findings: list[Finding] = []
        for payment_id in items.payment_ids:
            reconciled = await workflow.execute_activity_method(
                ReconciliationActivities.reconcile_payment, payment_id, **GATEWAY
            )
            findings.append(reconciled.finding)
            if reconciled.closed is not None:
                await workflow.execute_activity_method(
                    EventActivities.publish_payment_status, reconciled.closed, **EVENTS
                )
        for refund_id in items.refund_ids:
            findings.append(
                await workflow.execute_activity_method(
                    ReconciliationActivities.reconcile_refund, refund_id, **GATEWAY
                )
            )
        report = ReconciliationReportData(
            report_id=workflow.info().run_id,
            started_at=started.isoformat(),
            finished_at=workflow.now().isoformat(),
            findings=findings,
        )
        await workflow.execute_activity_method(
            ReconciliationActivities.save_reconciliation_report, report, **LEDGER
        )
        # A step added while runs of the older code may be in flight: behind a patch, so that
        # their histories replay without it.
        if workflow.patched("purge-expired-idempotency-keys"):
            await workflow.execute_activity_method(
                LedgerActivities.purge_expired_idempotency_keys, PurgeRequest(), **LEDGER
            )
        return report


def _history_nearly_full(page_size: int) -> bool:
    info = workflow.info()
    return (
        info.is_continue_as_new_suggested()
        or info.get_current_history_length() + page_size * EVENTS_PER_ITEM > RUN_HISTORY_BUDGET
    )


def _unreconciled(kind: str, item_id: str, failed: ActivityError) -> Finding:
    """An item whose activity failed for good (retrying could not help): the others go on,
    and the next pass tries it again."""
    return Finding(kind, item_id, f"not reconciled: {failed.cause or failed}", "none")


def _advanced(
    progress: ReconciliationPass, page: OpenItemsPage, findings: list[Finding]
) -> ReconciliationPass:
    """The pass after ``page``: the next cursor (or the next kind of item), counts, and the
    findings the report lists."""
    listed = list(progress.findings)
    unlisted = progress.unlisted
    for finding in findings:
        if len(listed) < (MAX_LISTED if finding.action != "none" else ROUTINE_LISTED):
            listed.append(finding)
        else:
            unlisted += 1
    kind, cursor = progress.kind, page.cursor
    if cursor is None:
        kind = REFUNDS if kind == PAYMENTS else DONE
    return replace(
        progress,
        kind=kind,
        cursor=cursor,
        checked_payments=progress.checked_payments + sum(1 for f in findings if f.kind == PAYMENTS),
        checked_refunds=progress.checked_refunds + sum(1 for f in findings if f.kind == REFUNDS),
        repaired=progress.repaired + sum(1 for f in findings if f.action != "none"),
        findings=listed,
        unlisted=unlisted,
    )


def _report(progress: ReconciliationPass, *, finished_at: str) -> ReconciliationReportData:
    findings = list(progress.findings)
    if progress.unlisted:
        findings.append(
            Finding("report", progress.report_id, f"{progress.unlisted} more not listed", "none")
        )
    return ReconciliationReportData(
        report_id=progress.report_id,
        started_at=progress.started_at,
        finished_at=finished_at,
        findings=findings,
        checked_payments=progress.checked_payments,
        checked_refunds=progress.checked_refunds,
        repaired=progress.repaired,
    )
