"""PaymentWorkflow: the life of one payment, from pending to success or failure.

Workflow id ``payment-{payment_id}`` (see workflows/client.py), so a payment can only ever
run once. Steps: record pending → announce → fraud check → sale through the gateway → record
the outcome → announce (status event and user notification). Every step is an activity with
its own timeout and retry policy (workflows/options.py); the short ones (database, fraud
rules, events) run as local activities on the workflow's own worker (workflows/steps.py), the
gateway's as regular ones. This code only decides.

``Prefer: wait=N`` on POST /initiate-payment starts the run together with its ``outcome``
update (update-with-start), which answers once the outcome is recorded.

A sale the gateway accepts without settling it (a bank transfer: ``settlement_pending``)
keeps the payment pending: the workflow records the transaction, then checks the gateway on
a schedule of durable timers (minutes, then hours, then days) and at once when signalled
(``check_now``: a webhook, an event on payment_status, POST /verify-payment), until the
transaction settles (success), is declined (failure) or the deadline passes (failure,
``settlement_timeout``).

When the input asks for it, the Order Service is told the outcome last; an update that can
never be made is logged, and the workflow still ends with the payment's outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import datetime, timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError, RetryState, TimeoutType
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from activities.events import EventActivities
    from activities.fraud import FRAUD_DECLINED, FraudActivities, without_verdict
    from activities.gateway import GatewayActivities
    from activities.ledger import LedgerActivities
    from activities.orders import OrderActivities
    from payments.contracts import (
        ChargeRequest,
        ChargeResult,
        FraudCheckRequest,
        FraudDecision,
        FraudPolicy,
        FraudRecord,
        HeldPayment,
        OrderUpdate,
        PaymentContinuation,
        PaymentOutcome,
        PaymentRequest,
        PaymentSnapshot,
        ReviewDecision,
        ReviewRecord,
    )
    from payments.events.envelope import event_id
    from payments.vocabulary import (
        PAID_STATUSES,
        SETTLED_STATUSES,
        SETTLEMENT_FAILED_STATUSES,
        DeclineType,
        PaymentMethod,
        PaymentStatus,
    )

from workflows.options import (
    CHARGE,
    EVENTS,
    FRAUD,
    GATEWAY,
    GATEWAY_START_TO_CLOSE,
    LEDGER,
    ORDERS,
    bounded_fraud_step,
)
from workflows.search_attributes import PAYMENT_STATUS as PAYMENT_STATUS_ATTRIBUTE
from workflows.search_attributes import ShowsProgress
from workflows.settlement import SettlementWait, parse_instant
from workflows.steps import SHORT_STEPS_RUN_LOCALLY, short_step

# Soft-decline retries per run before it continues as new (each adds ~15 events).
RETRIES_PER_RUN = 50
# The longest synchronous answer the ``outcome`` update gives (the API's Prefer: wait=N cap).
MAX_OUTCOME_WAIT_SECONDS = 10.0
# Runs of this version store the fraud step's verdict, bound the step by the policy's
# timeout (then fail open or closed), and hold a payment in review as an authorization.
FRAUD_VERDICTS = "fraud-verdicts-and-review"


@workflow.defn
class PaymentWorkflow(ShowsProgress):
    STATUS_ATTRIBUTE = PAYMENT_STATUS_ATTRIBUTE

    def __init__(self) -> None:
        super().__init__(PaymentStatus.PENDING)
        # A check_now signal that came before the wait for settlement began.
        self._check_requested = False
        self._settlement: SettlementWait | None = None
        self._cancel_requested = False
        # About to continue as new: an outcome update answers None now, not in the next run.
        self._continuing = False
        self._attempts = 0
        self._final: PaymentSnapshot | None = None
        self._local_steps = False
        self._verdicts = False
        # Held for review: an operator's decision, once given (the ``review`` update).
        self._in_review = False
        self._review: ReviewDecision | None = None
        self._review_deadline: datetime | None = None

    @workflow.query
    def progress(self) -> dict[str, str | int]:
        """Where the payment is; visible in the Temporal UI's Queries tab. ``next_check_at``:
        when the workflow checks the gateway next by itself (ISO 8601, "" when it is not
        waiting for settlement); reconciliation leaves a payment alone until then."""
        wait = self._settlement
        return {
            "status": self._status,
            "step": self._step,
            "settlement_checks": wait.checks if wait is not None else 0,
            "attempts": self._attempts,
            "next_check_at": wait.next_check_at if wait is not None else "",
        }

    @workflow.update
    async def outcome(self, wait_seconds: float) -> PaymentSnapshot | None:
        """The payment as recorded once it is final, if that is within ``wait_seconds``
        (POST /initiate-payment with ``Prefer: wait=N``, started together with the run by
        update-with-start); else None, and the caller answers "pending". A payment that
        begins a long wait (for settlement, or to retry a soft decline) answers None then."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._final is not None or self._is_waiting_long(),
                timeout=timedelta(seconds=wait_seconds),
            )
        return self._final

    @outcome.validator
    def _a_sensible_wait(self, wait_seconds: float) -> None:
        if not 0 < wait_seconds <= MAX_OUTCOME_WAIT_SECONDS:
            raise ValueError(f"wait_seconds must be in (0, {MAX_OUTCOME_WAIT_SECONDS}]")

    def _is_waiting_long(self) -> bool:
        return self._final is None and (
            self._continuing
            or self._step in ("waiting_to_retry", "waiting_for_settlement", "awaiting_review")
        )

    async def _continue_as_new(self, request: PaymentRequest) -> NoReturn:
        """Continue as new once every update handler of this run has answered (an outcome
        update answers None: the payment is in a long wait). No command: runs recorded before
        replay unchanged."""
        self._continuing = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(request)

    @workflow.update
    async def cancel(self) -> PaymentSnapshot | str:
        """Stop a payment that waits to retry a soft decline (POST /payment/{id}/cancel).
        Answers once the failure is recorded, with the payment as stored."""
        self._cancel_requested = True
        # Runs of earlier versions answered at once, before recording.
        if not workflow.patched("cancel-answers-once-recorded"):
            return "cancelled"
        await workflow.wait_condition(lambda: self._final is not None)
        assert self._final is not None
        return self._final

    @cancel.validator
    def _only_while_waiting_to_retry(self) -> None:
        if self._step != "waiting_to_retry" or self._cancel_requested:
            raise ValueError(f"the payment is not waiting to retry (step: {self._step})")

    @workflow.update
    async def review(self, decision: ReviewDecision) -> PaymentSnapshot:
        """An operator's decision on a payment held for review (POST
        /admin/payments/{id}/review): approve → captured, decline → voided. Answers with the
        payment as recorded once it is final."""
        self._review = decision
        await workflow.wait_condition(lambda: self._final is not None)
        assert self._final is not None
        return self._final

    @review.validator
    def _only_while_held(self, decision: ReviewDecision) -> None:
        if decision.decision not in ("approve", "decline"):
            raise ValueError("decision must be approve or decline")
        if not self._in_review or self._final is not None:
            raise ValueError(f"the payment is not held for review (step: {self._step})")
        if self._review is not None:
            raise ValueError(f"the payment was already reviewed: {self._review.decision}")

    @workflow.signal
    def check_now(self) -> None:
        """Something may have changed at the gateway: check before the next timer."""
        if self._settlement is not None:
            self._settlement.request_check()
        else:
            self._check_requested = True

    @workflow.run
    async def run(self, request: PaymentRequest) -> PaymentSnapshot:
        # Asked once per run, first: a run keeps the kind of step its history began with.
        local = self._local_steps = workflow.patched(SHORT_STEPS_RUN_LOCALLY)
        self._verdicts = workflow.patched(FRAUD_VERDICTS)
        if request.continued is not None:
            outcome = await self._pick_up(request, request.continued)
        else:
            self._step = "recording"
            pending = await short_step(
                LedgerActivities.record_payment_pending, request, local=local, options=LEDGER
            )
            if pending.status != PaymentStatus.PENDING:  # already decided: nothing twice
                self._status_is(pending.status)
                self._final = pending
                await workflow.wait_condition(workflow.all_handlers_finished)
                return pending
            announce = short_step(
                EventActivities.publish_payment_status, pending, local=local, options=EVENTS
            )
            if local:
                # Independent steps, run side by side; both end before the charge (a broker
                # outage still holds the payment before charging, as it always did).
                self._step = "fraud_check"
                _, decision = await asyncio.gather(announce, self._check_fraud(request))
            else:
                await announce
                decision = await self._check_fraud(request)
            outcome = await self._charge_unless_refused(request, decision)

        self._step = "recording_outcome"
        final = await short_step(
            LedgerActivities.record_payment_outcome, outcome, local=local, options=LEDGER
        )
        self._status_is(final.status)
        self._final = final
        self._step = "announcing"
        await short_step(EventActivities.publish_payment_status, final, local=local, options=EVENTS)
        if request.update_order_service:
            self._step = "updating_order"
            await self._update_order(request, final)
        self._step = "done"
        # An update answering with the outcome finishes before the run ends (no commands:
        # runs recorded before it replay unchanged).
        await workflow.wait_condition(workflow.all_handlers_finished)
        return final

    async def _check_fraud(self, request: PaymentRequest) -> FraudDecision:
        self._step = "fraud_check"
        check = FraudCheckRequest(
            payment_id=request.payment_id,
            order_id=request.order_id,
            user_id=request.user_id,
            amount_minor=request.amount_minor,
            currency=request.currency,
            merchant_id=request.merchant_id,
        )
        if not self._verdicts:
            return await short_step(
                FraudActivities.check_fraud, check, local=self._local_steps, options=FRAUD
            )
        policy = request.waits_by().fraud or FraudPolicy()
        bounded = bounded_fraud_step(timedelta(seconds=policy.timeout_seconds))
        try:
            decision = await short_step(
                FraudActivities.check_fraud,
                replace(
                    check,
                    payment_method=request.payment_method,
                    payment_token=request.payment_token,
                    payment_method_id=request.payment_method_id,
                    timeout_seconds=policy.timeout_seconds,
                    fail_open=policy.fail_open,
                ),
                local=self._local_steps,
                options=bounded,
            )
        except ActivityError as exc:  # a step that failed for good (a bug): no verdict
            decision = without_verdict(policy.fail_open, str(exc.cause))
        assert decision.verdict is not None
        self._in_review = decision.in_review
        deadline = (
            workflow.now() + timedelta(seconds=policy.review_deadline_seconds)
            if decision.in_review
            else None
        )
        self._review_deadline = deadline
        await short_step(
            LedgerActivities.record_fraud,
            FraudRecord(
                payment_id=request.payment_id,
                verdict=decision.verdict,
                fingerprint=decision.fingerprint,
                card_bin=decision.card_bin,
                review_deadline_at=deadline.isoformat() if deadline is not None else None,
            ),
            local=self._local_steps,
            options=LEDGER,
        )
        return decision

    async def _charge_unless_refused(
        self, request: PaymentRequest, decision: FraudDecision
    ) -> PaymentOutcome:
        if not decision.approved:
            return PaymentOutcome(
                payment_id=request.payment_id,
                succeeded=False,
                failure_reason=decision.reason,
                failure_message=decision.message,
            )
        if self._verdicts and decision.in_review:
            return await self._charge_after_review(request)
        return await self._charge(request, first_attempt=1)

    async def _charge_after_review(self, request: PaymentRequest) -> PaymentOutcome:
        """Authorize only (the customer's funds are held, nothing is charged), then wait
        durably for an operator: approve → submit for settlement; decline, or no decision
        by the deadline → void. A bank transfer cannot be authorized and held: it waits for
        the decision before it is charged at all. A sale that is declined ends as any
        charge does."""
        if request.payment_method == PaymentMethod.BANK_TRANSFER:
            review = await self._decision(request.payment_id)
            if review is not None and review.decision == "approve":
                return await self._charge(request, first_attempt=1)
            return PaymentOutcome(
                payment_id=request.payment_id,
                succeeded=False,
                failure_reason=FRAUD_DECLINED,
                failure_message=_review_refusal(review, "nothing was charged"),
            )
        authorized = await self._charge(
            replace(request, retry_soft_declines=False), first_attempt=1, authorize_only=True
        )
        if not authorized.succeeded or authorized.gateway_status != "authorized":
            self._in_review = False  # nothing is held: no decision can change it
            return authorized
        assert authorized.transaction_id is not None
        await short_step(
            LedgerActivities.record_payment_outcome,
            replace(authorized, still_pending=True),
            local=self._local_steps,
            options=LEDGER,
        )
        review = await self._decision(request.payment_id)
        held = HeldPayment(request.payment_id, authorized.transaction_id)
        if review is not None and review.decision == "approve":
            self._step = "capturing"
            captured = await workflow.execute_activity_method(
                GatewayActivities.capture, held, **GATEWAY
            )
            return replace(
                PaymentOutcome.of_charge(request.payment_id, captured),
                transaction_id=authorized.transaction_id,
                instrument=captured.instrument or authorized.instrument,
                attempts=authorized.attempts,
            )
        self._step = "voiding"
        voided = await workflow.execute_activity_method(
            GatewayActivities.void_authorization, held, **GATEWAY
        )
        return replace(
            authorized,
            succeeded=False,
            gateway_status=voided.status,
            failure_reason=FRAUD_DECLINED,
            failure_message=_review_refusal(review, "the authorization was voided"),
        )

    async def _decision(self, payment_id: str) -> ReviewDecision | None:
        """Wait durably for an operator's decision until the review deadline (None: none
        came); a decision is kept in the audit trail."""
        assert self._review_deadline is not None
        self._step = "awaiting_review"
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._review is not None,
                timeout=max(self._review_deadline - workflow.now(), timedelta(seconds=1)),
            )
        review = self._review
        # The window is closed: a decision arriving from now on (while the payment is voided
        # or captured) is refused by the validator, never accepted and ignored.
        self._in_review = False
        if review is not None:
            await short_step(
                LedgerActivities.record_review,
                ReviewRecord(payment_id, review),
                local=self._local_steps,
                options=LEDGER,
            )
        return review

    async def _pick_up(
        self, request: PaymentRequest, continued: PaymentContinuation
    ) -> PaymentOutcome:
        """The previous run continued as new while waiting: wait on where it left off."""
        self._attempts = continued.attempt
        if continued.charge is not None and continued.settlement is not None:
            self._settlement = SettlementWait(
                request.waits_by().pending_check_schedule_seconds,
                replace(
                    continued.settlement,
                    # A signal may have reached this run before the wait was rebuilt.
                    check_requested=continued.settlement.check_requested or self._check_requested,
                ),
            )
            return await self._await_settlement(request, continued.charge, continued.attempt)
        assert continued.declined is not None and continued.retry_at is not None
        if await self._wait_to_retry(parse_instant(continued.retry_at) - workflow.now()):
            return _cancelled(continued.declined)
        return await self._charge(request, first_attempt=continued.attempt + 1)

    async def _update_order(self, request: PaymentRequest, final: PaymentSnapshot) -> None:
        """Tell the Order Service the outcome. Retried while it is down; an update that can
        never be made (the Order Service refuses it, or this worker has none) is logged, and
        the workflow still ends with the payment's outcome: it is recorded and announced on
        payment_status already, and nothing on the order's side can change it."""
        try:
            await workflow.execute_activity_method(
                OrderActivities.update_order,
                OrderUpdate(
                    order_id=request.order_id,
                    payment_id=request.payment_id,
                    payment_status=final.status,
                    # The id of the payment_status event: one outcome, one id everywhere.
                    event_id=event_id("payment", request.payment_id, final.status),
                ),
                **ORDERS,
            )
        except ActivityError as exc:
            # Before this patch the failure failed the workflow. Asked only here, after the
            # failure, so that histories without a failed update are unchanged.
            if not workflow.patched("order-update-failure-keeps-outcome"):
                raise
            workflow.logger.error(
                "the order update failed for good; the payment keeps its outcome: %s",
                exc.cause,
            )

    async def _charge(
        self, request: PaymentRequest, *, first_attempt: int, authorize_only: bool = False
    ) -> PaymentOutcome:
        """Charge once; with retry_soft_declines, charge a soft decline again after each
        delay of the schedule (durable timers), unless cancelled meanwhile."""
        schedule = request.waits_by().retry_schedule_seconds if request.retry_soft_declines else []
        attempt = first_attempt - 1
        while True:
            attempt += 1
            self._attempts = attempt
            self._step = "charging"
            charge_request = ChargeRequest(
                payment_id=request.payment_id,
                order_id=request.order_id,
                user_id=request.user_id,
                amount_minor=request.amount_minor,
                currency=request.currency,
                payment_token=request.payment_token,
                payment_method_id=request.payment_method_id,
                attempt=attempt,
                gateway_order_id=request.gateway_order_id,
                authorize_only=authorize_only,
            )
            charge = await self._charge_within_deadline(charge_request)
            if charge is None:
                return PaymentOutcome(
                    payment_id=request.payment_id,
                    succeeded=False,
                    failure_reason="gateway_unreachable",
                    failure_message=(
                        "the gateway could not be reached before the checkout's payment "
                        "method expired; nothing was charged"
                    ),
                    attempts=attempt,
                )
            outcome = replace(
                PaymentOutcome.of_charge(request.payment_id, charge), attempts=attempt
            )
            if charge.approved:
                if charge.gateway_status in PAID_STATUSES:
                    return outcome
                # Accepted, not settled (settlement_pending): record it and wait.
                await short_step(
                    LedgerActivities.record_payment_outcome,
                    replace(outcome, still_pending=True),
                    local=self._local_steps,
                    options=LEDGER,
                )
                self._settlement = SettlementWait.starting_now(
                    request.waits_by().pending_check_schedule_seconds,
                    request.waits_by().pending_deadline_seconds,
                    check_requested=self._check_requested,
                )
                return await self._await_settlement(request, charge, attempt)
            if charge.decline_type != DeclineType.SOFT or attempt > len(schedule):
                return outcome  # hard declines are never retried; nor is anything without retry
            delay = timedelta(seconds=schedule[attempt - 1])
            retry_at = workflow.now() + delay
            await short_step(
                LedgerActivities.record_payment_outcome,
                replace(outcome, still_pending=True, next_retry_at=retry_at.isoformat()),
                local=self._local_steps,
                options=LEDGER,
            )
            if attempt - first_attempt + 1 >= RETRIES_PER_RUN and workflow.patched(
                "soft-decline-retries-continue-as-new"
            ):
                await self._continue_as_new(
                    replace(
                        request,
                        continued=PaymentContinuation(
                            attempt=attempt, declined=outcome, retry_at=retry_at.isoformat()
                        ),
                    )
                )
            if await self._wait_to_retry(delay):
                return _cancelled(outcome)

    async def _charge_within_deadline(self, charge: ChargeRequest) -> ChargeResult | None:
        """The sale, retried while the gateway's answer is unknown, but not past the life of
        the checkout's nonce (CHARGE's schedule-to-close): then one last lookup decides. A
        sale found is the charge; none means nothing was charged (None), and nothing will
        be: the service never charges long after the checkout has gone."""
        try:
            return await workflow.execute_activity_method(
                GatewayActivities.charge, charge, **CHARGE
            )
        except ActivityError as exc:
            # Out of time: either the last attempt was cut off, or the next retry would
            # have started past the bound (then the cause is the last attempt's failure).
            timed_out = exc.retry_state == RetryState.TIMEOUT or (
                isinstance(exc.cause, TemporalTimeout)
                and exc.cause.type == TimeoutType.SCHEDULE_TO_CLOSE
            )
            if not timed_out:
                raise
        self._step = "final_lookup"
        # The attempt the bound cut off may still be inside the SDK's call on its worker
        # (a thread is not stopped): its sale could land after a lookup made now. Every
        # attempt ends within the start-to-close (SDK timeout plus margin), so wait that.
        await workflow.sleep(GATEWAY_START_TO_CLOSE)
        return await workflow.execute_activity_method(
            GatewayActivities.find_charge, charge, **GATEWAY
        )

    async def _wait_to_retry(self, delay: timedelta) -> bool:
        """A durable timer of ``delay``; True if cancelled meanwhile."""
        self._step = "waiting_to_retry"
        if delay > timedelta(0):
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._cancel_requested, timeout=delay)
        return self._cancel_requested

    async def _await_settlement(
        self, request: PaymentRequest, charge: ChargeResult, attempt: int
    ) -> PaymentOutcome:
        assert charge.transaction_id is not None and self._settlement is not None
        wait = self._settlement
        while True:
            self._step = "waiting_for_settlement"
            if not await wait.until_next_check():
                return PaymentOutcome(
                    payment_id=request.payment_id,
                    succeeded=False,
                    transaction_id=charge.transaction_id,
                    gateway_status=charge.gateway_status,
                    instrument=charge.instrument,
                    failure_reason="settlement_timeout",
                    failure_message="the gateway did not settle the payment before the deadline",
                    attempts=attempt,
                )
            self._step = "checking_settlement"
            check = await workflow.execute_activity_method(
                GatewayActivities.check_transaction, charge.transaction_id, **GATEWAY
            )
            if check.status in SETTLED_STATUSES:
                return PaymentOutcome(
                    payment_id=request.payment_id,
                    succeeded=True,
                    transaction_id=charge.transaction_id,
                    processor_response_code=charge.processor_response_code,
                    gateway_status=check.status,
                    instrument=charge.instrument,
                    attempts=attempt,
                )
            if check.status in SETTLEMENT_FAILED_STATUSES:
                return PaymentOutcome(
                    payment_id=request.payment_id,
                    succeeded=False,
                    transaction_id=charge.transaction_id,
                    processor_response_code=check.processor_response_code,
                    gateway_status=check.status,
                    instrument=charge.instrument,
                    failure_reason=check.status,
                    failure_message=f"the gateway reports the transaction {check.status}",
                    attempts=attempt,
                )
            if wait.should_continue_as_new():
                await self._continue_as_new(
                    replace(
                        request,
                        continued=PaymentContinuation(
                            attempt=attempt, charge=charge, settlement=wait.state()
                        ),
                    )
                )


def _review_refusal(review: ReviewDecision | None, what_happened: str) -> str:
    if review is None:
        return f"no review decision before the deadline; {what_happened}"
    return "declined in review" + (f": {review.note}" if review.note else "")


def _cancelled(declined: PaymentOutcome) -> PaymentOutcome:
    return replace(
        declined,
        failure_reason="cancelled",
        failure_message="cancelled while waiting to retry a soft decline",
    )
