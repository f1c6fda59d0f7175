"""ReconciliationWorkflow: compare every non-terminal payment and refund with the gateway and
repair what differs. A Temporal Schedule (``reconciliation-{task_queue}``, created by the worker)
starts it every few minutes; the report is stored and served by GET /reconciliation/latest.

Each item is one activity (its own retries; one failing item does not stop the others):
- a pending payment whose workflow still runs is nudged to check the gateway now;
- a pending payment whose workflow is gone gets the gateway's outcome recorded (and
  announced), or is failed as abandoned when the gateway never saw a sale;
- an initiated refund whose workflow is gone is started again (its gateway calls carry the
  refund's request key, so the refund cannot happen twice).
Then housekeeping: idempotency keys past their expiry are deleted (a lookup ignores them
already; this only keeps the table small).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.events import EventActivities
    from activities.ledger import LedgerActivities
    from activities.reconciliation import ReconciliationActivities
    from payments.contracts import (
        Finding,
        PurgeRequest,
        ReconciliationReportData,
        ReconciliationRequest,
    )

from workflows.options import EVENTS, GATEWAY, LEDGER


@workflow.defn
class ReconciliationWorkflow:
    @workflow.run
    async def run(self, request: ReconciliationRequest) -> ReconciliationReportData:
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
