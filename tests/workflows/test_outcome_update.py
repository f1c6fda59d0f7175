"""The ``outcome`` update behind ``Prefer: wait=N``: the final payment or refund when it comes
within the wait, None otherwise, and None at once when a long wait begins. (Update-with-start
itself needs the dev server: tests/e2e/test_synchronous_answer_e2e.py.)"""

from __future__ import annotations

from dataclasses import replace

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from payments.config import PolicySettings
from payments.contracts import PaymentRequest, PaymentSnapshot, RefundRequest, RefundSnapshot
from tests.workflows.conftest import Harness, wait_for_step
from tests.workflows.test_payment_workflow import request
from tests.workflows.test_refund_workflow import paid_payment, reserve
from tests.workflows.test_retries import retrying
from workflows.payment import PaymentWorkflow
from workflows.refund import RefundWorkflow


async def start(
    harness: Harness, req: PaymentRequest
) -> WorkflowHandle[PaymentWorkflow, PaymentSnapshot]:
    return await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )


async def test_the_answer_is_the_recorded_payment_once_the_charge_gets_through(
    harness: Harness,
) -> None:
    harness.gateway.unavailable_times = 2  # retried after 2 s and 4 s
    handle = await start(harness, request())
    await wait_for_step(handle, "charging")
    answer = await handle.execute_update(PaymentWorkflow.outcome, 10.0)
    assert isinstance(answer, PaymentSnapshot)
    assert answer.status == "success"
    stored = harness.db.payments.get(answer.payment_id)
    assert stored is not None and stored.payment_status == "success"
    assert stored.transaction_id == answer.transaction_id
    assert (await handle.result()) == answer


async def test_no_answer_when_the_outcome_takes_longer_than_the_wait(harness: Harness) -> None:
    harness.gateway.unavailable_times = 5  # 2 + 4 + 8 + 16 s of retries before the sale
    handle = await start(harness, request())
    await wait_for_step(handle, "charging")
    assert await handle.execute_update(PaymentWorkflow.outcome, 3.0) is None
    assert (await handle.result()).status == "success"


@pytest.mark.parametrize("step", ["waiting_for_settlement", "waiting_to_retry"])
async def test_no_answer_at_once_when_a_long_wait_begins(harness: Harness, step: str) -> None:
    if step == "waiting_for_settlement":
        harness.gateway.sale_status = "settlement_pending"
        req = replace(request(), payment_token="fake-sepa-direct-debit-nonce")
    else:
        harness.gateway.decline_code = "2001"
        req = retrying()
    handle = await start(harness, req)
    await wait_for_step(handle, step)
    assert await handle.execute_update(PaymentWorkflow.outcome, 10.0) is None
    await handle.terminate("test over")


@pytest.mark.parametrize("seconds", [0.0, -1.0, 10.5])
async def test_a_wait_out_of_bounds_is_refused(harness: Harness, seconds: float) -> None:
    harness.gateway.sale_status = "settlement_pending"
    handle = await start(harness, replace(request(), payment_token="fake-sepa-direct-debit-nonce"))
    await wait_for_step(handle, "waiting_for_settlement")
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(PaymentWorkflow.outcome, seconds)
    await handle.terminate("test over")


async def test_a_refund_answers_once_processed_and_not_while_waiting_for_settlement(
    harness: Harness,
) -> None:
    payment_id = await paid_payment(harness)
    harness.gateway.unavailable_times = 2
    whole = reserve(harness, payment_id, None)
    handle = await harness.client.start_workflow(
        RefundWorkflow.run,
        RefundRequest(
            refund_id=whole, payment_id=payment_id, policy=PolicySettings().refund_policy()
        ),
        id=f"refund-{whole}",
        task_queue=harness.task_queue,
    )
    await wait_for_step(handle, "refunding")
    answer = await handle.execute_update(RefundWorkflow.outcome, 10.0)
    assert isinstance(answer, RefundSnapshot)
    assert (answer.status, answer.method) == ("processed", "void")
    assert (await handle.result()) == answer

    # A partial refund before settlement waits for it: no answer, at once.
    other = await paid_payment(harness)
    part = reserve(harness, other, 1000)
    waiting = await harness.client.start_workflow(
        RefundWorkflow.run,
        RefundRequest(refund_id=part, payment_id=other, policy=PolicySettings().refund_policy()),
        id=f"refund-{part}",
        task_queue=harness.task_queue,
    )
    await wait_for_step(waiting, "waiting_for_settlement")
    assert await waiting.execute_update(RefundWorkflow.outcome, 10.0) is None
    await waiting.terminate("test over")
