"""PaymentWorkflow: the life of one payment, from pending to success or failure.

Workflow id ``payment-{payment_id}`` (see workflows/client.py), so a payment can only ever
run once. Steps: record pending → announce → fraud check → sale through the gateway → record
the outcome → announce (status event and user notification). Every step is an activity with
its own timeout and retry policy (workflows/options.py); this code only decides.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from payments.contracts import (
        ChargeRequest,
        FraudCheckRequest,
        PaymentOutcome,
        PaymentRequest,
        PaymentSnapshot,
    )

from workflows import steps


@workflow.defn
class PaymentWorkflow:
    def __init__(self) -> None:
        self._status = "pending"
        self._step = "starting"

    @workflow.query
    def progress(self) -> dict[str, str]:
        """Where the payment is; visible in the Temporal UI's Queries tab."""
        return {"status": self._status, "step": self._step}

    @workflow.run
    async def run(self, request: PaymentRequest) -> PaymentSnapshot:
        self._step = "recording"
        pending = await steps.record_payment_pending(request)
        if pending.status != "pending":  # already decided: nothing may happen twice
            self._status = pending.status
            return pending
        await steps.publish_payment_status(pending)

        self._step = "fraud_check"
        decision = await steps.check_fraud(
            FraudCheckRequest(
                payment_id=request.payment_id,
                order_id=request.order_id,
                user_id=request.user_id,
                amount_minor=request.amount_minor,
                currency=request.currency,
            )
        )
        if decision.approved:
            self._step = "charging"
            charge = await steps.charge(
                ChargeRequest(
                    payment_id=request.payment_id,
                    order_id=request.order_id,
                    amount_minor=request.amount_minor,
                    currency=request.currency,
                    payment_token=request.payment_token,
                )
            )
            outcome = PaymentOutcome(
                payment_id=request.payment_id,
                succeeded=charge.approved,
                transaction_id=charge.transaction_id,
                processor_response_code=charge.processor_response_code,
                failure_reason=charge.failure_reason,
                failure_message=charge.failure_message,
            )
        else:
            outcome = PaymentOutcome(
                payment_id=request.payment_id,
                succeeded=False,
                failure_reason=decision.reason,
                failure_message=decision.message,
            )

        self._step = "recording_outcome"
        final = await steps.record_payment_outcome(outcome)
        self._status = final.status
        self._step = "announcing"
        await steps.publish_payment_status(final)
        self._step = "done"
        return final
