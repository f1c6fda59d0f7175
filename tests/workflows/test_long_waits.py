"""Waits of days keep every run's history short: the settlement wait of payments and refunds
and the soft-decline retries continue as new, carrying their deadline and schedule; the
charge gives up with the checkout's nonce.

Temporal warns at 10,240 events in one run and terminates the run at 51,200; each run here
must stay under 2,000 whatever the wait."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from payments.config import PolicySettings
from payments.contracts import PaymentSnapshot, RefundRequest
from payments.errors import GatewayUnavailable
from payments.gateway.types import GatewayTransaction
from tests.workflows.conftest import Harness
from tests.workflows.test_payment_workflow import POLICY, request
from tests.workflows.test_pending_payments import bank_request, lost_sale
from tests.workflows.test_refund_workflow import paid_payment, reserve
from workflows.payment import PaymentWorkflow
from workflows.refund import RefundWorkflow

HOUR, DAY = 3600.0, 86400.0
MOST_EVENTS_PER_RUN = 2000


async def runs(client: Client, handle: WorkflowHandle[Any, Any]) -> list[list[Any]]:
    """The history events of every run of the workflow, first to last, following
    continue-as-new."""
    found: list[list[Any]] = []
    run_id: str | None = handle.first_execution_run_id
    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        found.append(list(history.events))
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return found


def seconds_between(first: Any, last: Any) -> float:
    elapsed: timedelta = last.event_time.ToDatetime() - first.event_time.ToDatetime()
    return elapsed.total_seconds()


async def assert_short_runs(harness: Harness, handle: WorkflowHandle[Any, Any]) -> float:
    """Every run under MOST_EVENTS_PER_RUN events, more than one run; the seconds of
    workflow time from the first run's start to the last run's end."""
    histories = await runs(harness.client, handle)
    lengths = [len(events) for events in histories]
    assert len(lengths) > 1, lengths
    assert max(lengths) < MOST_EVENTS_PER_RUN, lengths
    return seconds_between(histories[0][0], histories[-1][-1])


async def start_partial_refund(
    harness: Harness, payment_id: str, **request_fields: Any
) -> WorkflowHandle[Any, Any]:
    refund_id = reserve(harness, payment_id, 1000)
    return await harness.client.start_workflow(
        RefundWorkflow.run,
        RefundRequest(
            refund_id=refund_id,
            payment_id=payment_id,
            # The shipped defaults: what a refund in production waits by.
            policy=PolicySettings().refund_policy(),
            **request_fields,
        ),
        id=f"refund-{refund_id}",
        task_queue=harness.task_queue,
    )


async def test_a_refund_waiting_seven_days_ends_at_the_deadline_in_short_runs(
    harness: Harness,
) -> None:
    payment_id = await paid_payment(harness)  # a card sale that never settles
    handle = await start_partial_refund(harness, payment_id)
    result = await handle.result()
    assert (result.status, result.failure_reason) == ("failed", "settlement_timeout")
    elapsed = await assert_short_runs(harness, handle)
    assert 7 * DAY <= elapsed < 7 * DAY + HOUR
    assert harness.db.refunds.remainder(payment_id) == 4999


async def test_a_refund_waiting_for_settlement_for_days_is_processed_in_short_runs(
    harness: Harness,
) -> None:
    payment_id = await paid_payment(harness)
    # One find per check: 10 s, 1 min, 5 min, 15 min, then hourly: settles after ~6.5 days.
    harness.gateway.settle_on_find = 160
    handle = await start_partial_refund(harness, payment_id)
    result = await handle.result()
    assert (result.status, result.method) == ("processed", "refund")
    elapsed = await assert_short_runs(harness, handle)
    assert 6 * DAY < elapsed < 7 * DAY
    assert (await handle.query(RefundWorkflow.progress))["settlement_checks"] == 159


async def test_a_restarted_refund_keeps_the_deadline_of_its_first_run(
    harness: Harness, time_skipping_env: WorkflowEnvironment
) -> None:
    """Reconciliation starts a refund again when its run is lost: the input carries the
    deadline counted from the refund's creation, so a refund created five days ago waits
    two days more, not seven."""
    payment_id = await paid_payment(harness)
    now = await time_skipping_env.get_current_time()  # the server's (skipped) clock
    deadline = (
        now
        - timedelta(days=5)
        + timedelta(seconds=PolicySettings().refund_settlement_deadline_seconds)
    )
    refund_id = reserve(harness, payment_id, 1000)
    req = RefundRequest(
        refund_id=refund_id,
        payment_id=payment_id,
        policy=PolicySettings().refund_policy(),
        deadline_at=deadline.isoformat(),
    )
    # (Terminating a first run here would stop the test server from skipping time.)
    second = await harness.client.start_workflow(
        RefundWorkflow.run, req, id=f"refund-{refund_id}", task_queue=harness.task_queue
    )
    result = await second.result()
    assert (result.status, result.failure_reason) == ("failed", "settlement_timeout")
    last = (await second.fetch_history()).events[-1]
    first = (await second.fetch_history()).events[0]
    assert first.event_time.ToDatetime().replace(tzinfo=UTC) - now < timedelta(minutes=1)
    waited = last.event_time.ToDatetime().replace(tzinfo=UTC) - now
    assert timedelta(days=2) <= waited < timedelta(days=2, hours=2)


async def test_a_payment_pending_fourteen_days_under_nudges_ends_in_short_runs(
    harness: Harness, time_skipping_env: WorkflowEnvironment
) -> None:
    """A bank transfer that never settles, nudged every two hours (webhooks, events,
    POST /verify-payment) on top of its own schedule."""
    harness.gateway.sale_status = "settlement_pending"
    req = replace(bank_request(), policy=PolicySettings().payment_policy())
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    for _ in range(14 * 12 - 1):
        await time_skipping_env.sleep(timedelta(hours=2))
        await handle.signal(PaymentWorkflow.check_now)
    result: PaymentSnapshot = await handle.result()
    assert (result.status, result.failure_reason) == ("failure", "settlement_timeout")
    elapsed = await assert_short_runs(harness, handle)
    assert 14 * DAY <= elapsed < 14 * DAY + HOUR
    stored = harness.db.payments.get(req.payment_id)
    assert stored is not None and stored.payment_status == "failure"
    assert [op for op, _ in harness.gateway.calls].count("sale") == 1


async def test_a_payment_settling_after_many_checks_continues_with_its_sale(
    harness: Harness,
) -> None:
    """The run that picks up the wait checks the same sale and ends the payment with it."""
    harness.gateway.sale_status = "settlement_pending"
    harness.gateway.settle_on_find = 130  # one find per check, every ten minutes
    req = bank_request(pending_check_schedule_seconds=[600.0])
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    result: PaymentSnapshot = await handle.result()
    assert result.status == "success"
    await assert_short_runs(harness, handle)
    stored = harness.db.payments.get(req.payment_id)
    assert stored is not None and stored.transaction_id == result.transaction_id
    assert [op for op, _ in harness.gateway.calls].count("find") == 130
    assert (await handle.query(PaymentWorkflow.progress))["settlement_checks"] == 130


async def test_soft_decline_retries_continue_as_new_and_end_approved(harness: Harness) -> None:
    harness.gateway.decline_sequence = ["2001"] * 150 + [None]  # insufficient funds, 150 times
    req = replace(
        request(),
        retry_soft_declines=True,
        policy=replace(POLICY, retry_schedule_seconds=[HOUR] * 160),
    )
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    result: PaymentSnapshot = await handle.result()
    assert result.status == "success"
    await assert_short_runs(harness, handle)
    sales = [key for op, key in harness.gateway.calls if op == "sale"]
    assert len(sales) == len(set(sales)) == 151  # one sale per attempt, each its own key
    stored = harness.db.payments.get(req.payment_id)
    assert stored is not None and stored.attempts == 151


def gateway_unreachable_while_charging(harness: Harness) -> None:
    """Every call the charge makes fails as if the gateway timed out; other calls (the
    final lookup) get through."""
    sale, search = harness.gateway.sale, harness.gateway.find_sales_by_order_id

    def charging() -> bool:
        return activity.in_activity() and activity.info().activity_type == "charge"

    def unreachable_sale(**kwargs: Any) -> Any:
        if charging():
            raise GatewayUnavailable("injected: gateway timed out")
        return sale(**kwargs)

    def unreachable_search(order_id: str) -> list[GatewayTransaction]:
        if charging():
            raise GatewayUnavailable("injected: gateway timed out")
        return search(order_id)

    harness.gateway.sale = unreachable_sale  # type: ignore[method-assign]
    harness.gateway.find_sales_by_order_id = unreachable_search  # type: ignore[method-assign]


@pytest.mark.timeout(120)
async def test_the_charge_gives_up_when_the_nonce_expires(harness: Harness) -> None:
    gateway_unreachable_while_charging(harness)
    req = request()
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    result: PaymentSnapshot = await handle.result()
    assert (result.status, result.failure_reason) == ("failure", "gateway_unreachable")
    events = (await handle.fetch_history()).events
    # The retries stop when the next one would start past three hours (backoff 5 min).
    assert 2.5 * HOUR < seconds_between(events[0], events[-1]) < 3.5 * HOUR
    assert harness.gateway.transactions == {}


@pytest.mark.timeout(120)
async def test_a_sale_made_before_the_nonce_expired_is_found_by_the_last_lookup(
    harness: Harness,
) -> None:
    gateway_unreachable_while_charging(harness)
    req = request()
    # The first attempt's sale went through; its answer was lost.
    lost = lost_sale(req, f"lost-{uuid.uuid4().hex[:8]}")
    harness.gateway.lost_sales[req.order_id] = lost
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    result: PaymentSnapshot = await handle.result()
    assert (result.status, result.transaction_id) == ("success", lost.transaction_id)
    # The lookup waits until an attempt cut off by the bound has ended: a timer first.
    timer = EventType.EVENT_TYPE_TIMER_STARTED
    scheduled = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    history = (await handle.fetch_history()).events
    commands = [
        (e.event_type, e.activity_task_scheduled_event_attributes.activity_type.name)
        for e in history
        if e.event_type in (timer, scheduled)
    ]
    # Then find_charge; recording and announcing are local activities (markers).
    assert commands[-2:] == [(timer, ""), (scheduled, "find_charge")]
