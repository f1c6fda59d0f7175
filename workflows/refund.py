"""RefundWorkflow: give back all or part of a successful payment.

Workflow id ``refund-{refund_id}``. The API has already reserved the amount (refund row
``initiated``, under the payment's lock), so concurrent refunds can never add up to more than
was paid. Steps: announce initiated → re-check against the payment → gateway:
- the whole payment before settlement: void the sale (nothing was moved yet);
- settled (or settling): refund the amount;
- a partial refund before settlement: sleep durably and ask again until the sale settles,
  up to a deadline (a worker restart does not lose the wait);
→ record processed or failed → announce.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.events import EventActivities
    from activities.gateway import GatewayActivities
    from activities.ledger import LedgerActivities
    from payments.contracts import (
        GatewayRefundRequest,
        RefundOutcome,
        RefundPlan,
        RefundRequest,
        RefundSnapshot,
    )
    from payments.vocabulary import GatewayRefundOutcome, RefundMethod, RefundStatus

from workflows.options import EVENTS, GATEWAY, LEDGER


@workflow.defn
class RefundWorkflow:
    def __init__(self) -> None:
        self._status: str = RefundStatus.INITIATED
        self._step = "starting"
        self._settlement_checks = 0
        # When the workflow asks the gateway again by itself (ISO 8601, "" when not waiting).
        self._next_check_at = ""

    @workflow.query
    def progress(self) -> dict[str, str | int]:
        return {
            "status": self._status,
            "step": self._step,
            "settlement_checks": self._settlement_checks,
            "next_check_at": self._next_check_at,
        }

    @workflow.run
    async def run(self, request: RefundRequest) -> RefundSnapshot:
        initiated = await workflow.execute_activity_method(
            LedgerActivities.refund_snapshot, request, **LEDGER
        )
        if initiated.status != RefundStatus.INITIATED:
            self._status = initiated.status
            return initiated
        await workflow.execute_activity_method(
            EventActivities.publish_refund_status, initiated, **EVENTS
        )

        self._step = "checking"
        plan = await workflow.execute_activity_method(
            LedgerActivities.plan_refund, request, **LEDGER
        )
        if plan.allowed:
            outcome = await self._give_back(plan, request)
        else:
            outcome = RefundOutcome(
                refund_id=request.refund_id,
                succeeded=False,
                failure_reason=plan.failure_reason,
                failure_message=plan.failure_message,
            )

        self._step = "recording_outcome"
        final = await workflow.execute_activity_method(
            LedgerActivities.record_refund_outcome, outcome, **LEDGER
        )
        self._status = final.status
        self._step = "announcing"
        await workflow.execute_activity_method(
            EventActivities.publish_refund_status, final, **EVENTS
        )
        self._step = "done"
        return final

    async def _give_back(self, plan: RefundPlan, request: RefundRequest) -> RefundOutcome:
        assert plan.transaction_id is not None
        policy = request.waits_by()
        deadline = workflow.now() + timedelta(seconds=policy.settlement_deadline_seconds)
        while True:
            self._step = "refunding"
            result = await workflow.execute_activity_method(
                GatewayActivities.gateway_refund,
                GatewayRefundRequest(
                    refund_id=plan.refund_id,
                    transaction_id=plan.transaction_id,
                    amount_minor=plan.amount_minor,
                    currency=plan.currency,
                    whole_payment=plan.whole_payment,
                ),
                **GATEWAY,
            )
            if result.outcome in (GatewayRefundOutcome.REFUNDED, GatewayRefundOutcome.VOIDED):
                return RefundOutcome(
                    refund_id=plan.refund_id,
                    succeeded=True,
                    method=(
                        RefundMethod.VOID
                        if result.outcome == GatewayRefundOutcome.VOIDED
                        else RefundMethod.REFUND
                    ),
                    gateway_transaction_id=result.gateway_transaction_id,
                )
            if result.outcome != GatewayRefundOutcome.NOT_SETTLED:
                return RefundOutcome(
                    refund_id=plan.refund_id,
                    succeeded=False,
                    failure_reason="gateway_refused",
                    failure_message=(
                        f"{result.error_code}: {result.error_message}"
                        if result.error_code
                        else result.error_message
                    ),
                )
            if workflow.now() >= deadline:
                return RefundOutcome(
                    refund_id=plan.refund_id,
                    succeeded=False,
                    failure_reason="settlement_timeout",
                    failure_message="the payment did not settle before the refund deadline",
                )
            self._step = "waiting_for_settlement"
            self._settlement_checks += 1
            wait = timedelta(seconds=policy.settlement_poll_seconds)
            self._next_check_at = (workflow.now() + wait).isoformat()
            await workflow.sleep(wait)
            self._next_check_at = ""
