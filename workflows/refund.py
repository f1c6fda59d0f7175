"""RefundWorkflow: give back all or part of a successful payment.

Workflow id ``refund-{refund_id}``. The API has already reserved the amount (refund row
``initiated``, under the payment's lock), so concurrent refunds can never add up to more than
was paid. Steps: announce initiated → re-check against the payment → gateway:
- the whole payment before settlement: void the sale (nothing was moved yet);
- settled (or settling): refund the amount;
- a partial refund before settlement: wait durably for the sale to settle (the shared
  settlement wait, workflows/settlement.py: a backoff schedule, woken by ``check_now``, an
  absolute deadline counted from the refund's creation and carried in the input, so a run
  restarted by reconciliation does not start it over; a long wait continues as new);
→ record processed or failed → announce.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.events import EventActivities
    from activities.gateway import GatewayActivities
    from activities.ledger import LedgerActivities
    from payments.contracts import (
        GatewayRefundRequest,
        RefundContinuation,
        RefundOutcome,
        RefundPlan,
        RefundRequest,
        RefundSnapshot,
        SettlementWaitState,
    )
    from payments.vocabulary import GatewayRefundOutcome, RefundMethod, RefundStatus

from workflows.options import EVENTS, GATEWAY, LEDGER
from workflows.search_attributes import REFUND_STATUS as REFUND_STATUS_ATTRIBUTE
from workflows.search_attributes import ShowsProgress
from workflows.settlement import SettlementWait, parse_instant
from workflows.steps import SHORT_STEPS_RUN_LOCALLY, short_step

# The longest synchronous answer the ``outcome`` update gives (the API's Prefer: wait=N cap).
MAX_OUTCOME_WAIT_SECONDS = 10.0


@workflow.defn
class RefundWorkflow(ShowsProgress):
    STATUS_ATTRIBUTE = REFUND_STATUS_ATTRIBUTE

    def __init__(self) -> None:
        super().__init__(RefundStatus.INITIATED)
        # A check_now signal that came before the wait for settlement began.
        self._check_requested = False
        self._settlement: SettlementWait | None = None
        self._final: RefundSnapshot | None = None
        # About to continue as new: an outcome update answers None now, not in the next run.
        self._continuing = False

    @workflow.query
    def progress(self) -> dict[str, str | int]:
        """``next_check_at``: when the workflow asks the gateway again by itself (ISO 8601,
        "" when not waiting)."""
        wait = self._settlement
        return {
            "status": self._status,
            "step": self._step,
            "settlement_checks": wait.checks if wait is not None else 0,
            "next_check_at": wait.next_check_at if wait is not None else "",
        }

    @workflow.update
    async def outcome(self, wait_seconds: float) -> RefundSnapshot | None:
        """The refund as recorded once it is final, if that is within ``wait_seconds``
        (POST /refund with ``Prefer: wait=N``, by update-with-start); else None. A refund
        that begins waiting for its sale to settle answers None then."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: (
                    self._final is not None
                    or self._continuing
                    or self._step == "waiting_for_settlement"
                ),
                timeout=timedelta(seconds=wait_seconds),
            )
        return self._final

    @outcome.validator
    def _a_sensible_wait(self, wait_seconds: float) -> None:
        if not 0 < wait_seconds <= MAX_OUTCOME_WAIT_SECONDS:
            raise ValueError(f"wait_seconds must be in (0, {MAX_OUTCOME_WAIT_SECONDS}]")

    @workflow.signal
    def check_now(self) -> None:
        """The sale may have settled (a webhook): ask the gateway before the next timer."""
        if self._settlement is not None:
            self._settlement.request_check()
        else:
            self._check_requested = True

    @workflow.run
    async def run(self, request: RefundRequest) -> RefundSnapshot:
        # Asked once per run, first: a run keeps the kind of step its history began with.
        local = workflow.patched(SHORT_STEPS_RUN_LOCALLY)
        if request.continued is not None:
            outcome = await self._give_back(request.continued.plan, request)
        else:
            initiated = await short_step(
                LedgerActivities.refund_snapshot, request, local=local, options=LEDGER
            )
            if initiated.status != RefundStatus.INITIATED:
                self._status_is(initiated.status)
                self._final = initiated
                await workflow.wait_condition(workflow.all_handlers_finished)
                return initiated
            announce = short_step(
                EventActivities.publish_refund_status, initiated, local=local, options=EVENTS
            )
            check = short_step(LedgerActivities.plan_refund, request, local=local, options=LEDGER)
            if local:
                # Independent steps, side by side; both end before the gateway is asked.
                self._step = "checking"
                _, plan = await asyncio.gather(announce, check)
            else:
                await announce
                self._step = "checking"
                plan = await check
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
        final = await short_step(
            LedgerActivities.record_refund_outcome, outcome, local=local, options=LEDGER
        )
        self._status_is(final.status)
        self._final = final
        self._step = "announcing"
        await short_step(EventActivities.publish_refund_status, final, local=local, options=EVENTS)
        self._step = "done"
        # An update answering with the outcome finishes before the run ends (no commands:
        # runs recorded before it replay unchanged).
        await workflow.wait_condition(workflow.all_handlers_finished)
        return final

    def _settlement_wait(self, request: RefundRequest) -> SettlementWait:
        policy = request.waits_by()
        if request.continued is not None:
            carried = request.continued.settlement
            # A signal may have reached this run before the wait was rebuilt.
            return SettlementWait(
                policy.check_schedule(),
                replace(carried, check_requested=carried.check_requested or self._check_requested),
            )
        deadline = (
            parse_instant(request.deadline_at)
            if request.deadline_at is not None
            else workflow.now() + timedelta(seconds=policy.settlement_deadline_seconds)
        )
        state = SettlementWaitState(deadline.isoformat(), 0, self._check_requested)
        return SettlementWait(policy.check_schedule(), state)

    async def _give_back(self, plan: RefundPlan, request: RefundRequest) -> RefundOutcome:
        assert plan.transaction_id is not None
        wait = self._settlement = self._settlement_wait(request)
        if request.continued is not None:
            # The previous run had just been told "not settled": wait before asking again.
            self._step = "waiting_for_settlement"
            if not await wait.until_next_check():
                return _settlement_timeout(plan)
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
            if wait.should_continue_as_new():
                # Once every update handler has answered (no command: replays unchanged).
                self._continuing = True
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    replace(
                        request,
                        continued=RefundContinuation(plan=plan, settlement=wait.state()),
                    )
                )
            self._step = "waiting_for_settlement"
            if not await wait.until_next_check():
                return _settlement_timeout(plan)


def _settlement_timeout(plan: RefundPlan) -> RefundOutcome:
    return RefundOutcome(
        refund_id=plan.refund_id,
        succeeded=False,
        failure_reason="settlement_timeout",
        failure_message="the payment did not settle before the refund deadline",
    )
