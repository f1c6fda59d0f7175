"""Soft declines of payments that asked for retries: durable timers, attempts, cancel, a
saved method deleted meanwhile."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from temporalio.client import WorkflowUpdateFailedError

from payments.contracts import PaymentRequest, PaymentSnapshot
from tests.workflows.conftest import Harness, run_vault, wait_for_step
from tests.workflows.test_payment_workflow import POLICY, request, run
from tests.workflows.test_pending_payments import workflow_seconds
from workflows.payment import PaymentWorkflow

HOUR, DAY = 3600.0, 86400.0


def retrying() -> PaymentRequest:
    return replace(
        request(),
        retry_soft_declines=True,
        policy=replace(POLICY, retry_schedule_seconds=[HOUR, DAY, 3 * DAY]),
    )


async def test_soft_decline_is_retried_on_schedule_until_approved(harness: Harness) -> None:
    harness.gateway.decline_sequence = ["2001", "2001", None]  # insufficient funds twice
    req = retrying()
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    result = await handle.result()
    assert result.status == "success"
    # Charged again after an hour, then after a day: a new sale (and key) each time.
    assert HOUR + DAY <= await workflow_seconds(handle) < HOUR + DAY + 60
    keys = [key for op, key in harness.gateway.calls if op == "sale"]
    assert keys == [
        f"sale-{req.payment_id}",
        f"sale-{req.payment_id}-2",
        f"sale-{req.payment_id}-3",
    ]
    stored = harness.db.payments.get(req.payment_id)
    assert stored is not None and (stored.attempts, stored.next_retry_at) == (3, None)
    trail = [(e.to_status, e.detail) for e in harness.db.audit.trail(req.payment_id)]
    assert trail[0][0] == "pending" and trail[-1][0] == "success"
    assert any(detail and detail.startswith("retry 2 at") for _, detail in trail)


async def test_retries_end_as_failure_when_the_schedule_runs_out(harness: Harness) -> None:
    harness.gateway.decline_code = "2001"
    result = await run(harness, retrying())
    assert (result.status, result.failure_reason) == ("failure", "processor_declined")
    assert [op for op, _ in harness.gateway.calls].count("sale") == 4  # first + 3 retries


async def test_hard_decline_is_never_retried(harness: Harness) -> None:
    harness.gateway.decline_code = "2015"
    result = await run(harness, retrying())
    assert result.status == "failure"
    assert [op for op, _ in harness.gateway.calls].count("sale") == 1


async def test_without_retry_a_soft_decline_fails_at_once(harness: Harness) -> None:
    harness.gateway.decline_code = "2001"
    result = await run(harness, request())
    assert result.status == "failure"
    assert [op for op, _ in harness.gateway.calls].count("sale") == 1


async def test_cancel_stops_a_pending_retry(harness: Harness) -> None:
    harness.gateway.decline_code = "2001"
    req = retrying()
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    await wait_for_step(handle, "waiting_to_retry")
    waiting = harness.db.payments.get(req.payment_id)
    assert waiting is not None
    assert (waiting.payment_status, waiting.attempts) == ("pending", 1)
    assert waiting.next_retry_at is not None
    # The update answers once the failure is recorded: the row says so already.
    answer = await handle.execute_update(PaymentWorkflow.cancel)
    assert isinstance(answer, PaymentSnapshot)
    assert (answer.status, answer.failure_reason) == ("failure", "cancelled")
    stored = harness.db.payments.get(req.payment_id)
    assert stored is not None and stored.payment_status == "failure"
    result = await handle.result()
    assert (result.status, result.failure_reason) == ("failure", "cancelled")
    assert [op for op, _ in harness.gateway.calls].count("sale") == 1


async def test_cancel_is_refused_unless_waiting_to_retry(harness: Harness) -> None:
    req = replace(request(), payment_token="fake-sepa-direct-debit-nonce")
    harness.gateway.sale_status = "settlement_pending"
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    await wait_for_step(handle, "waiting_for_settlement")
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(PaymentWorkflow.cancel)
    await handle.terminate("test over")


async def test_a_saved_method_deleted_while_waiting_is_not_charged_again(
    harness: Harness,
) -> None:
    method_id = str(uuid.uuid4())
    assert (await run_vault(harness, method_id, "fake-valid-visa-nonce")).succeeded
    harness.gateway.decline_sequence = ["2001"]  # approved, were it charged again
    req = replace(retrying(), payment_token=None, payment_method_id=method_id)
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    await wait_for_step(handle, "waiting_to_retry")
    # What DELETE /payment-methods/{id} does first: the method is unusable at once (the
    # gateway's copy is removed by another workflow shortly after).
    harness.db.payment_methods.delete(method_id)

    result = await handle.result()

    assert (result.status, result.failure_reason) == ("failure", "payment_method_removed")
    assert [op for op, _ in harness.gateway.calls].count("sale") == 1
    stored = harness.db.payments.get(req.payment_id)
    assert stored is not None
    assert (stored.payment_status, stored.attempts, stored.next_retry_at) == ("failure", 2, None)
