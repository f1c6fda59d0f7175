"""Payments the gateway accepts without settling (bank transfers): durable waiting, polling
on a schedule, nudges, deadlines; and the unknown outcome that must not charge twice."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from payments.contracts import PaymentRequest
from payments.events import topics
from payments.gateway.types import GatewayTransaction
from payments.money import Money
from tests.workflows.conftest import Harness
from tests.workflows.test_payment_workflow import POLICY, request, run
from workflows.payment import PaymentWorkflow

DAY = 86400.0
# Kill Bill-like: minutes, then hours, then days.
SCHEDULE = [60.0, 3600.0, 6 * 3600.0, DAY]


async def workflow_seconds(handle: WorkflowHandle[Any, Any]) -> float:
    """How long the workflow ran in its own (skipped) time: first to last history event."""
    events = (await handle.fetch_history()).events
    return (events[-1].event_time.ToDatetime() - events[0].event_time.ToDatetime()).total_seconds()


def lost_sale(req: PaymentRequest, transaction_id: str) -> GatewayTransaction:
    """The approved sale an attempt made at the gateway although its answer never came."""
    return GatewayTransaction(
        transaction_id=transaction_id,
        type="sale",
        status="submitted_for_settlement",
        amount=Money(req.amount_minor, req.currency),
        order_id=req.order_id,
        processor_response_code="1000",
        processor_response_text="Approved",
    )


def bank_request(**policy: Any) -> PaymentRequest:
    """A bank transfer, waiting by SCHEDULE for 14 days unless ``policy`` says otherwise."""
    waits = replace(
        POLICY, pending_check_schedule_seconds=SCHEDULE, pending_deadline_seconds=14 * DAY
    )
    return replace(
        request(),
        payment_method="bank_transfer",
        payment_token="fake-sepa-direct-debit-nonce",
        policy=replace(waits, **policy),
    )


async def test_bank_transfer_settles_days_later(
    harness: Harness, time_skipping_env: WorkflowEnvironment
) -> None:
    harness.gateway.sale_status = "settlement_pending"
    harness.gateway.settle_on_find = 6  # 60 s, 1 h, 6 h, 1 d, 1 d, 1 d: three days and more
    req = bank_request()
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    result = await handle.result()
    elapsed = await workflow_seconds(handle)
    assert result.status == "success"
    assert 3 * DAY < elapsed < 4 * DAY
    assert (await handle.query(PaymentWorkflow.progress))["settlement_checks"] == 6
    statuses = [e["status"] for e in harness.publisher.of(topics.PAYMENT_STATUS, req.payment_id)]
    assert statuses == ["pending", "success"]
    stored = harness.db.payments.get(req.payment_id)
    assert stored is not None and stored.gateway_status == "settled"


async def test_settlement_declined_fails_the_payment(harness: Harness) -> None:
    harness.gateway.sale_status = "settlement_pending"
    harness.gateway.settle_on_find = 2
    harness.gateway.settles_as = "settlement_declined"
    result = await run(harness, bank_request())
    assert (result.status, result.failure_reason) == ("failure", "settlement_declined")


async def test_pending_payment_ends_at_the_deadline(
    harness: Harness, time_skipping_env: WorkflowEnvironment
) -> None:
    harness.gateway.sale_status = "settlement_pending"
    req = bank_request(pending_deadline_seconds=2 * DAY)
    result = await run(harness, req)
    assert (result.status, result.failure_reason) == ("failure", "settlement_timeout")
    stored = harness.db.payments.get(req.payment_id)
    assert stored is not None and stored.transaction_id is not None


async def test_a_nudge_checks_at_once(
    harness: Harness, time_skipping_env: WorkflowEnvironment
) -> None:
    harness.gateway.sale_status = "settlement_pending"
    harness.gateway.settle_on_find = 1  # settled by the time anyone looks
    req = bank_request(pending_check_schedule_seconds=[DAY])
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    await handle.signal(PaymentWorkflow.check_now)  # a webhook, an event, /verify-payment
    result = await handle.result()
    elapsed = await workflow_seconds(handle)
    assert result.status == "success"
    assert elapsed < 3600  # not the day-long timer


async def test_unknown_outcome_takes_the_sale_that_happened(harness: Harness) -> None:
    req = request()
    # The first attempt's sale went through but its answer was lost (a timeout).
    harness.gateway.unavailable_times = 1
    harness.gateway.lost_sales[req.order_id] = lost_sale(req, "lost-1")
    result = await run(harness, req)
    assert (result.status, result.transaction_id) == ("success", "lost-1")
    assert [op for op, _ in harness.gateway.calls] == ["sale", "search"]


async def test_soft_and_hard_declines_are_told_apart(harness: Harness) -> None:
    harness.gateway.decline_code = "2001"
    soft = await run(harness, request())
    harness.gateway.decline_code = "2015"
    hard = await run(harness, request())
    assert (soft.processor_response_code, hard.processor_response_code) == ("2001", "2015")
    soft_row = harness.db.payments.get(soft.payment_id)
    hard_row = harness.db.payments.get(hard.payment_id)
    assert soft_row is not None and hard_row is not None
    assert (soft_row.decline_type, hard_row.decline_type) == ("soft", "hard")


async def test_order_service_is_told_the_outcome(harness: Harness) -> None:
    req = replace(request(), update_order_service=True)
    result = await run(harness, req)
    assert result.status == "success"
    [(order_id, payment_id, status, event_id)] = harness.orders.updates
    assert (order_id, payment_id, status) == (req.order_id, req.payment_id, "success")
    [success_event] = [
        e
        for e in harness.publisher.of(topics.PAYMENT_STATUS, req.payment_id)
        if e["status"] == "success"
    ]
    assert event_id == success_event["event_id"]
