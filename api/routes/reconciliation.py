"""Reconciliation reports (admin)."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, status

from api.deps import AdminDep, ReconciliationDep, WorkflowsDep
from api.errors import ERRORS
from api.schemas import ReconciliationReportOut
from payments.errors import NotFound

router = APIRouter(tags=["admin"])


@router.get("/reconciliation/latest", response_model=ReconciliationReportOut, responses=ERRORS)
async def latest_report(
    reconciliation: ReconciliationDep, _admin: AdminDep
) -> ReconciliationReportOut:
    """What the last reconciliation run compared with the gateway, and what it repaired."""
    report = await asyncio.to_thread(reconciliation.latest_report)
    if report is None:
        raise NotFound("no reconciliation has run yet")
    return ReconciliationReportOut(
        report_id=report.report_id,
        started_at=report.started_at,
        finished_at=report.finished_at,
        checked_payments=report.checked_payments,
        checked_refunds=report.checked_refunds,
        repaired=report.repaired,
        findings=json.loads(report.findings),
    )


@router.post("/reconciliation/run", status_code=status.HTTP_202_ACCEPTED, responses=ERRORS)
async def run_now(workflows: WorkflowsDep, _admin: AdminDep) -> dict[str, str]:
    """Trigger the reconciliation schedule now (it also runs on its own interval)."""
    await workflows.run_reconciliation_now()
    return {"status": "triggered"}
