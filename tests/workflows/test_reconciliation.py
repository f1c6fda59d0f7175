"""Reconciliation leaves running workflows to their own schedule, pages through every open
item in bounded runs, and adopts a sale only when it is this payment's, in the currency it was
charged in."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.reconciliation import ReconciliationActivities
from payments.config import DatabaseSettings, PolicySettings
from payments.contracts import (
    PaymentOutcome,
    PaymentToReconcile,
    ReconciliationReportData,
    ReconciliationRequest,
)
from payments.db.database import Database
from payments.db.engine import create_db_engine
from payments.db.models import Payment
from payments.gateway.types import GatewayTransaction
from payments.money import Money
from tests.conftest import BACKENDS, migrated_database
from tests.support.rows import payment_row
from tests.workflows.conftest import Harness, wait_for_step, worker_harness
from tests.workflows.test_payment_workflow import POLICY, request, run
from workflows.client import PaymentWorkflows, TemporalConnection
from workflows.payment import PaymentWorkflow
from workflows.reconciliation import ReconciliationWorkflow

HOUR = 3600.0
DAY = 86400.0


@pytest.fixture(params=BACKENDS)
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A database of each test's own (on each backend): a pass takes up every open item it
    finds, and these tests count what one pass did."""
    with migrated_database(request.param, tmp_path_factory, "reconciliation") as url:
        engine = create_db_engine(DatabaseSettings(url=url))
        try:
            yield Database(engine)
        finally:
            engine.dispose()


async def reconcile(harness: Harness, **request: Any) -> ReconciliationReportData:
    """One reconciliation pass over everything open (no minimum age), run to its end."""
    return await harness.client.execute_workflow(
        ReconciliationWorkflow.run,
        ReconciliationRequest(min_age_seconds=0, **request),
        id=f"reconciliation-{uuid.uuid4()}",
        task_queue=harness.task_queue,
    )


async def start_bank_transfer(
    harness: Harness, task_queue: str | None = None
) -> WorkflowHandle[PaymentWorkflow, Any]:
    """A bank transfer whose sale is settlement_pending, waiting for its hourly, then daily,
    check."""
    harness.gateway.sale_status = "settlement_pending"
    req = replace(
        request(),
        payment_method="bank_transfer",
        payment_token="fake-sepa-direct-debit-nonce",
        policy=replace(POLICY, pending_check_schedule_seconds=[HOUR, DAY]),
    )
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run,
        req,
        id=f"payment-{req.payment_id}",
        task_queue=task_queue or harness.task_queue,
    )
    await wait_for_step(handle, "waiting_for_settlement")
    return handle


async def signals(handle: WorkflowHandle[Any, Any]) -> int:
    history = await handle.fetch_history()
    signalled = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    return sum(1 for e in history.events if e.event_type == signalled)


def activities(harness: Harness) -> ReconciliationActivities:
    """The reconciliation activities as the worker builds them, to call one directly."""
    return ReconciliationActivities(
        harness.db,
        harness.gateway,
        PaymentWorkflows(
            TemporalConnection.of(harness.client), harness.task_queue, PolicySettings()
        ),
    )


def lost_sale(payment: Payment, amount: Money | None = None) -> GatewayTransaction:
    """A sale the gateway made for ``payment``'s order whose answer never came back."""
    return GatewayTransaction(
        transaction_id=f"lost-{uuid.uuid4().hex[:8]}",
        type="sale",
        status="settled",
        amount=amount or Money(*payment.charge),
        order_id=payment.gateway_order,
        processor_response_code="1000",
        processor_response_text="Approved",
    )


def orphan(harness: Harness, **columns: Any) -> Payment:
    """A pending payment whose workflow never ran."""
    payment, _ = harness.db.payments.insert(payment_row(**columns))
    return payment


# --- running workflows are left to their own schedule -------------------------------------


async def test_a_bank_transfer_waiting_on_its_schedule_is_not_signalled(
    harness: Harness, time_skipping_env: WorkflowEnvironment
) -> None:
    handle = await start_bank_transfer(harness)
    payment_id = handle.id.removeprefix("payment-")
    events_before = len((await handle.fetch_history()).events)

    # The clock stands still meanwhile: the payment's own hourly check stays an hour away.
    with time_skipping_env.auto_time_skipping_disabled():
        report = await reconcile(harness)

    [finding] = [f for f in report.findings if f.id == payment_id]
    assert finding.action == "none"
    assert finding.found.startswith("running, next check at ")
    # Nothing reached the workflow: no signal, no extra check, not one event more.
    assert await signals(handle) == 0
    assert (await handle.query(PaymentWorkflow.progress))["settlement_checks"] == 0
    assert len((await handle.fetch_history()).events) == events_before
    await handle.terminate("test over")


async def test_an_overdue_payment_is_nudged(harness: Harness) -> None:
    handle = await start_bank_transfer(harness)
    payment_id = handle.id.removeprefix("payment-")
    progress = await handle.query(PaymentWorkflow.progress)
    due = datetime.fromisoformat(str(progress["next_check_at"]))
    grace = 120.0

    # Within the grace period after its check was due: still its own business.
    on_time = await ActivityEnvironment().run(
        activities(harness).reconcile_open_payment,
        PaymentToReconcile(payment_id, (due + timedelta(seconds=grace - 1)).isoformat(), grace),
    )
    assert on_time.finding.action == "none"
    assert await signals(handle) == 0

    # Past it, as reconciliation sees it when the workflow has not checked: told to check.
    overdue = await ActivityEnvironment().run(
        activities(harness).reconcile_open_payment,
        PaymentToReconcile(payment_id, (due + timedelta(seconds=grace + 60)).isoformat(), grace),
    )
    assert (overdue.finding.action, overdue.finding.found) == (
        "nudged",
        f"running, overdue since {due.isoformat()}",
    )
    assert await signals(handle) == 1
    await wait_for_step(handle, "waiting_for_settlement")
    assert (await handle.query(PaymentWorkflow.progress))["settlement_checks"] == 1
    await handle.terminate("test over")


async def test_a_workflow_that_cannot_answer_is_not_nudged(
    harness: Harness,
    time_skipping_env: WorkflowEnvironment,
    executor: ThreadPoolExecutor,
    tmp_path: Path,
) -> None:
    # The payment's worker is gone: its workflow runs, but nobody answers a query.
    async with worker_harness(harness.client, harness.db, executor, tmp_path) as elsewhere:
        handle = await start_bank_transfer(elsewhere, elsewhere.task_queue)
    payment_id = handle.id.removeprefix("payment-")

    with time_skipping_env.auto_time_skipping_disabled():
        report = await reconcile(harness)

    [finding] = [f for f in report.findings if f.id == payment_id]
    assert (finding.found, finding.action) == ("running, progress unknown", "none")
    assert await signals(handle) == 0
    await handle.terminate("test over")


# --- every open item, in runs of bounded history --------------------------------------------


async def test_every_open_item_is_reached_in_runs_of_bounded_history(harness: Harness) -> None:
    # Thousands of bank transfers pending for days, whose sales have not settled yet, and a
    # newer orphan behind them that the gateway did charge: many pages, more than the 500
    # oldest.
    long_ago = datetime.now(UTC) - timedelta(days=3)
    for i in range(2000):
        unsettled = lost_sale(payment_row(), Money(4999, "USD"))
        harness.gateway.transactions[unsettled.transaction_id] = replace(
            unsettled, status="settlement_pending"
        )
        orphan(
            harness,
            transaction_id=unsettled.transaction_id,
            gateway_status="settlement_pending",
            created_at=long_ago,
            updated_at=long_ago + timedelta(seconds=i),
        )
    newest = orphan(harness)
    harness.gateway.lost_sales[newest.gateway_order] = lost_sale(newest)

    workflow_id = f"reconciliation-{uuid.uuid4()}"
    handle = await harness.client.start_workflow(
        ReconciliationWorkflow.run,
        ReconciliationRequest(min_age_seconds=0),
        id=workflow_id,
        task_queue=harness.task_queue,
    )
    report = await handle.result()

    lengths = await run_history_lengths(harness, workflow_id, handle.first_execution_run_id)
    assert max(lengths) < 2000, lengths
    assert len(lengths) > 1, "the pass continued as new"
    repaired = harness.db.payments.get(newest.payment_id)
    assert repaired is not None and repaired.payment_status == "success"
    # One report for the whole pass, however many runs it took: every item counted, the
    # unsettled ones left as they are.
    stored = harness.db.reconciliation.latest_report()
    assert stored is not None and stored.report_id == report.report_id
    assert (stored.checked_payments, stored.repaired) == (2001, 1)
    listed = {f.id: f for f in report.findings}
    assert listed[newest.payment_id].action == "recorded_success"


async def run_history_lengths(harness: Harness, workflow_id: str, run_id: str | None) -> list[int]:
    """The number of events of every run of the chain, following continue-as-new."""
    lengths: list[int] = []
    while run_id:
        history = await harness.client.get_workflow_handle(
            workflow_id, run_id=run_id
        ).fetch_history()
        lengths.append(len(history.events))
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            else None
        )
    return lengths


# --- adopting a sale ------------------------------------------------------------------------


async def test_a_converted_payment_is_matched_by_what_was_charged(harness: Harness) -> None:
    # Shown 500.00 SEK, charged 47.50 USD: the gateway's sale is in USD.
    converted = orphan(
        harness,
        amount=50000,
        currency="SEK",
        charged_amount=4750,
        charged_currency="USD",
        exchange_rate="0.095",
    )
    sale = lost_sale(converted, Money(4750, "USD"))
    harness.gateway.lost_sales[converted.gateway_order] = sale

    report = await reconcile(harness)

    assert {f.id: f.action for f in report.findings}[converted.payment_id] == "recorded_success"
    stored = harness.db.payments.get(converted.payment_id)
    assert stored is not None
    assert (stored.payment_status, stored.transaction_id) == ("success", sale.transaction_id)


async def test_a_payment_held_for_review_whose_workflow_is_gone_is_voided(
    harness: Harness,
) -> None:
    """An authorization waiting for review is not a charge: with nothing left to capture it,
    it is released (as the review deadline would), never recorded as paid."""
    held = orphan(harness, fraud_decision="review", fraud_score=70)
    sale = replace(lost_sale(held), status="authorized")
    harness.gateway.transactions[sale.transaction_id] = sale
    harness.db.payments.complete(
        PaymentOutcome(
            held.payment_id,
            succeeded=True,
            transaction_id=sale.transaction_id,
            gateway_status="authorized",
            still_pending=True,
        )
    )

    report = await reconcile(harness)

    assert {f.id: f.action for f in report.findings}[held.payment_id] == "voided"
    stored = harness.db.payments.get(held.payment_id)
    assert stored is not None
    assert (stored.payment_status, stored.failure_reason) == ("failure", "fraud_declined")
    assert harness.gateway.transactions[sale.transaction_id].status == "voided"


async def test_another_payments_sale_is_never_adopted(harness: Harness) -> None:
    # A payment of the order succeeded; a second one of the same order and amount was stored
    # but its workflow never ran (and never charged anything).
    paid = await run(harness, request())
    assert paid.transaction_id is not None
    first = harness.db.payments.get(paid.payment_id)
    assert first is not None
    second = orphan(
        harness,
        order_id=first.order_id,
        gateway_order_id=first.gateway_order_id,
        amount=first.amount,
    )

    report = await reconcile(harness)

    assert {f.id: f.action for f in report.findings}[second.payment_id] == "recorded_failure"
    stored = harness.db.payments.get(second.payment_id)
    assert stored is not None
    assert (stored.payment_status, stored.failure_reason, stored.transaction_id) == (
        "failure",
        "abandoned",
        None,
    )


async def test_a_sale_two_open_payments_could_own_is_left_to_an_operator(
    harness: Harness,
) -> None:
    # Two orphans of one order and amount, one sale at the gateway: whose it is cannot be
    # told, so neither takes it, and neither is failed while one of them was charged.
    first = orphan(harness)
    second = orphan(
        harness,
        order_id=first.order_id,
        gateway_order_id=first.gateway_order_id,
        amount=first.amount,
    )
    sale = lost_sale(first)
    harness.gateway.lost_sales[first.gateway_order] = sale

    report = await reconcile(harness)

    found = {f.id: f for f in report.findings}
    for payment, rival in ((first, second), (second, first)):
        assert found[payment.payment_id].action == "none"
        assert found[payment.payment_id].found == (
            f"workflow gone, sale {sale.transaction_id} could be payment {rival.payment_id}'s"
        )
        stored = harness.db.payments.get(payment.payment_id)
        assert stored is not None and stored.payment_status == "pending"
