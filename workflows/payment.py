"""PaymentWorkflow: the life of one payment, from pending to success or failure.

Workflow id ``payment-{payment_id}`` (see workflows/client.py), so a payment can only ever
run once. Steps: record pending → announce → fraud check → sale through the gateway → record
the outcome → announce (status event and user notification). Every step is an activity with
its own timeout and retry policy (workflows/options.py); this code only decides.

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

import contextlib
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.events import EventActivities
    from activities.fraud import FraudActivities
    from activities.gateway import GatewayActivities
    from activities.ledger import LedgerActivities
    from activities.orders import OrderActivities
    from payments.contracts import (
        ChargeRequest,
        ChargeResult,
        FraudCheckRequest,
        OrderUpdate,
        PaymentOutcome,
        PaymentRequest,
        PaymentSnapshot,
    )
    from payments.events.envelope import event_id
    from payments.vocabulary import (
        PAID_STATUSES,
        SETTLED_STATUSES,
        SETTLEMENT_FAILED_STATUSES,
        DeclineType,
        PaymentStatus,
    )

from workflows.options import EVENTS, FRAUD, GATEWAY, LEDGER, ORDERS


@workflow.defn
class PaymentWorkflow:
    def __init__(self) -> None:
        self._status: str = PaymentStatus.PENDING
        self._step = "starting"
        self._check_requested = False
        self._settlement_checks = 0
        self._cancel_requested = False
        self._attempts = 0
        # When the workflow checks the gateway next by itself (ISO 8601, "" when it is not
        # waiting for settlement): reconciliation leaves a payment alone until then.
        self._next_check_at = ""

    @workflow.query
    def progress(self) -> dict[str, str | int]:
        """Where the payment is; visible in the Temporal UI's Queries tab."""
        return {
            "status": self._status,
            "step": self._step,
            "settlement_checks": self._settlement_checks,
            "attempts": self._attempts,
            "next_check_at": self._next_check_at,
        }

    @workflow.update
    def cancel(self) -> str:
        """Stop a payment that waits to retry a soft decline (POST /payment/{id}/cancel)."""
        self._cancel_requested = True
        return "cancelled"

    @cancel.validator
    def _only_while_waiting_to_retry(self) -> None:
        if self._step != "waiting_to_retry":
            raise ValueError(f"the payment is not waiting to retry (step: {self._step})")

    @workflow.signal
    def check_now(self) -> None:
        """Something may have changed at the gateway: check before the next timer."""
        self._check_requested = True

    @workflow.run
    async def run(self, request: PaymentRequest) -> PaymentSnapshot:
        self._step = "recording"
        pending = await workflow.execute_activity_method(
            LedgerActivities.record_payment_pending, request, **LEDGER
        )
        if pending.status != PaymentStatus.PENDING:  # already decided: nothing may happen twice
            self._status = pending.status
            return pending
        await workflow.execute_activity_method(
            EventActivities.publish_payment_status, pending, **EVENTS
        )

        self._step = "fraud_check"
        decision = await workflow.execute_activity_method(
            FraudActivities.check_fraud,
            FraudCheckRequest(
                payment_id=request.payment_id,
                order_id=request.order_id,
                user_id=request.user_id,
                amount_minor=request.amount_minor,
                currency=request.currency,
                merchant_id=request.merchant_id,
            ),
            **FRAUD,
        )
        if decision.approved:
            outcome = await self._charge(request)
        else:
            outcome = PaymentOutcome(
                payment_id=request.payment_id,
                succeeded=False,
                failure_reason=decision.reason,
                failure_message=decision.message,
            )

        self._step = "recording_outcome"
        final = await workflow.execute_activity_method(
            LedgerActivities.record_payment_outcome, outcome, **LEDGER
        )
        self._status = final.status
        self._step = "announcing"
        await workflow.execute_activity_method(
            EventActivities.publish_payment_status, final, **EVENTS
        )
        if request.update_order_service:
            self._step = "updating_order"
            await self._update_order(request, final)
        self._step = "done"
        return final

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

    async def _charge(self, request: PaymentRequest) -> PaymentOutcome:
        """Charge once; with retry_soft_declines, charge a soft decline again after each
        delay of the schedule (durable timers), unless cancelled meanwhile."""
        schedule = request.waits_by().retry_schedule_seconds if request.retry_soft_declines else []
        attempt = 0
        while True:
            attempt += 1
            self._attempts = attempt
            self._step = "charging"
            charge = await workflow.execute_activity_method(
                GatewayActivities.charge,
                ChargeRequest(
                    payment_id=request.payment_id,
                    order_id=request.order_id,
                    user_id=request.user_id,
                    amount_minor=request.amount_minor,
                    currency=request.currency,
                    payment_token=request.payment_token,
                    payment_method_id=request.payment_method_id,
                    attempt=attempt,
                    gateway_order_id=request.gateway_order_id,
                ),
                **GATEWAY,
            )
            outcome = replace(
                PaymentOutcome.of_charge(request.payment_id, charge), attempts=attempt
            )
            if charge.approved:
                if charge.gateway_status in PAID_STATUSES:
                    return outcome
                # Accepted, not settled (settlement_pending): record it and wait.
                await workflow.execute_activity_method(
                    LedgerActivities.record_payment_outcome,
                    replace(outcome, still_pending=True),
                    **LEDGER,
                )
                return replace(await self._await_settlement(request, charge), attempts=attempt)
            if charge.decline_type != DeclineType.SOFT or attempt > len(schedule):
                return outcome  # hard declines are never retried; nor is anything without retry
            delay = timedelta(seconds=schedule[attempt - 1])
            next_retry_at = workflow.now() + delay
            await workflow.execute_activity_method(
                LedgerActivities.record_payment_outcome,
                replace(outcome, still_pending=True, next_retry_at=next_retry_at.isoformat()),
                **LEDGER,
            )
            self._step = "waiting_to_retry"
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._cancel_requested, timeout=delay)
            if self._cancel_requested:
                return replace(
                    outcome,
                    failure_reason="cancelled",
                    failure_message="cancelled while waiting to retry a soft decline",
                )

    async def _await_settlement(
        self, request: PaymentRequest, charge: ChargeResult
    ) -> PaymentOutcome:
        assert charge.transaction_id is not None
        policy = request.waits_by()
        deadline = workflow.now() + timedelta(seconds=policy.pending_deadline_seconds)
        schedule = policy.pending_check_schedule_seconds or [3600.0]
        while True:
            self._step = "waiting_for_settlement"
            remaining = (deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                return PaymentOutcome(
                    payment_id=request.payment_id,
                    succeeded=False,
                    transaction_id=charge.transaction_id,
                    gateway_status=charge.gateway_status,
                    instrument=charge.instrument,
                    failure_reason="settlement_timeout",
                    failure_message="the gateway did not settle the payment before the deadline",
                )
            delay = schedule[min(self._settlement_checks, len(schedule) - 1)]
            wait = timedelta(seconds=min(delay, remaining))
            self._next_check_at = (workflow.now() + wait).isoformat()
            # Wakes on the timer (the scheduled check) or on a check_now signal; a signal
            # that came earlier (even before this wait) is not lost: the flag stays set.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._check_requested,
                    timeout=wait,
                )
            self._next_check_at = ""
            self._check_requested = False
            self._settlement_checks += 1
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
                )
