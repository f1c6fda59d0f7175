"""Record the histories the replay tests replay: ``python -m tests.replay.record LABEL``
(``make record-histories``), before changing workflow code.

Each main path of every workflow type runs on Temporal's time-skipping test server with the
real workflows and activity classes, wired as the worker wires them (``build_activities``),
the gateway, the publisher and the Order Service swapped for the workflow tests' fakes; each
path gets a fresh database and gateway, so that what one path leaves behind (say, a pending
payment) never shows up in another's history. The history of the path's workflow is then
written as JSON to ``tests/replay/histories/LABEL/<path>.json``, only once every path has
run as expected. Committed, those files are replayed by ``tests/replay`` against every later
version: a change that would break a run in flight fails CI.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment

from payments.config import DatabaseSettings, FraudSettings
from payments.contracts import (
    FraudPolicy,
    PaymentSnapshot,
    ReconciliationRequest,
    RefundSnapshot,
    ReviewDecision,
)
from payments.db.database import Database
from payments.db.engine import create_db_engine
from payments.db.migrate import upgrade
from tests.replay.recorded import DATA_CONVERTER, HISTORIES
from tests.workflows.conftest import (
    Harness,
    run_removal,
    run_vault,
    test_server_path,
    wait_for_step,
    worker_harness,
)
from tests.workflows.test_payment_workflow import POLICY, request, run
from tests.workflows.test_reconciliation_and_vault import open_items
from tests.workflows.test_refund_workflow import paid_payment, refund, reserve
from workflows.namespace_setup import register_search_attributes
from workflows.payment import PaymentWorkflow
from workflows.reconciliation import ReconciliationWorkflow

# A folder name that is also a readable label: a commit, a tag, a word.
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class UnexpectedPath(RuntimeError):
    """A path ended otherwise than it should: its history would not show what its name says."""


def expect(path: str, got: object, wanted: object) -> None:
    if got != wanted:
        raise UnexpectedPath(f"{path}: expected {wanted!r}, got {got!r}")


# A path runs its workflow to its end and returns the id of the workflow whose history is kept.
RecordedPath = Callable[[Harness], Awaitable[str]]


async def payment_success(harness: Harness) -> str:
    req = request()
    expect("payment_success", (await run(harness, req)).status, "success")
    return f"payment-{req.payment_id}"


async def payment_answered_by_update(harness: Harness) -> str:
    """Prefer: wait=N: the outcome update comes while the charge is retried (the gateway
    timed out twice) and answers with the payment once it is recorded."""
    harness.gateway.unavailable_times = 2
    req = request()
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    await wait_for_step(handle, "charging")
    answer = await handle.execute_update(PaymentWorkflow.outcome, 10.0)
    expect("payment_answered_by_update", getattr(answer, "status", None), "success")
    expect("payment_answered_by_update", (await handle.result()).status, "success")
    return handle.id


async def payment_decline(harness: Harness) -> str:
    harness.gateway.decline_code = "2000"  # Do Not Honor, and no retry asked for
    req = request()
    result = await run(harness, req)
    expect(
        "payment_decline", (result.status, result.failure_reason), ("failure", "processor_declined")
    )
    return f"payment-{req.payment_id}"


async def payment_bank_pending_then_settled(harness: Harness) -> str:
    """A bank transfer accepted as settlement_pending: a check_now signal (a webhook) makes it
    check at once, still pending; the next scheduled check finds it settled."""
    harness.gateway.sale_status = "settlement_pending"
    harness.gateway.settle_on_find = 2
    req = replace(
        request(), payment_method="bank_transfer", payment_token="fake-sepa-direct-debit-nonce"
    )
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    await wait_for_step(handle, "waiting_for_settlement")
    await handle.signal(PaymentWorkflow.check_now)
    expect("payment_bank_pending_then_settled", (await handle.result()).status, "success")
    checks = (await handle.query(PaymentWorkflow.progress))["settlement_checks"]
    expect("payment_bank_pending_then_settled", checks, 2)
    return handle.id


async def payment_soft_decline_retried(harness: Harness) -> str:
    """Insufficient funds, charged again after the schedule's first delay, approved."""
    harness.gateway.decline_sequence = ["2001", None]
    req = replace(request(), retry_soft_declines=True)
    result = await run(harness, req)
    sales = [operation for operation, _ in harness.gateway.calls].count("sale")
    expect("payment_soft_decline_retried", (result.status, sales), ("success", 2))
    return f"payment-{req.payment_id}"


async def payment_soft_decline_cancelled(harness: Harness) -> str:
    """Soft-declined, waiting to retry, cancelled (POST /payment/{id}/cancel: the update)."""
    harness.gateway.decline_code = "2001"
    req = replace(request(), retry_soft_declines=True)
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    await wait_for_step(handle, "waiting_to_retry")
    answer = await handle.execute_update(PaymentWorkflow.cancel)
    expect(
        "payment_soft_decline_cancelled",
        getattr(answer, "failure_reason", answer),
        "cancelled",
    )
    result = await handle.result()
    expect("payment_soft_decline_cancelled", result.failure_reason, "cancelled")
    return handle.id


async def refund_settled_payment(harness: Harness) -> str:
    payment_id = await paid_payment(harness)
    sale = harness.db.payments.get(payment_id)
    assert sale is not None and sale.transaction_id is not None
    harness.gateway.settle(sale.transaction_id)
    refund_id = reserve(harness, payment_id, 2000)
    result = await refund(harness, payment_id, refund_id)
    expect("refund_settled_payment", (result.status, result.method), ("processed", "refund"))
    return f"refund-{refund_id}"


async def refund_void(harness: Harness) -> str:
    """The whole payment before settlement: the sale is voided."""
    payment_id = await paid_payment(harness)
    refund_id = reserve(harness, payment_id, None)
    result = await refund(harness, payment_id, refund_id)
    expect("refund_void", (result.status, result.method), ("processed", "void"))
    return f"refund-{refund_id}"


async def refund_partial_waits_for_settlement(harness: Harness) -> str:
    """Part of an unsettled payment: the refund sleeps and asks again until the sale settles
    (on the third look), then refunds."""
    payment_id = await paid_payment(harness)
    harness.gateway.settle_on_find = 3
    refund_id = reserve(harness, payment_id, 1000)
    result = await refund(harness, payment_id, refund_id)
    expect(
        "refund_partial_waits_for_settlement",
        (result.status, result.method),
        ("processed", "refund"),
    )
    return f"refund-{refund_id}"


async def payment_pending_across_runs(harness: Harness) -> str:
    """A bank transfer checked every ten minutes settles on the 130th check: the wait
    continues as new after 100; the history kept is the run that picked it up."""
    harness.gateway.sale_status = "settlement_pending"
    harness.gateway.settle_on_find = 130
    req = replace(
        request(),
        payment_method="bank_transfer",
        payment_token="fake-sepa-direct-debit-nonce",
        policy=replace(POLICY, pending_check_schedule_seconds=[600.0]),
    )
    expect("payment_pending_across_runs", (await run(harness, req)).status, "success")
    return f"payment-{req.payment_id}"


async def payment_retries_across_runs(harness: Harness) -> str:
    """55 soft declines an hour apart, then approved: the retries continue as new after 50."""
    harness.gateway.decline_sequence = ["2001"] * 55 + [None]
    req = replace(
        request(),
        retry_soft_declines=True,
        policy=replace(POLICY, retry_schedule_seconds=[3600.0] * 60),
    )
    expect("payment_retries_across_runs", (await run(harness, req)).status, "success")
    return f"payment-{req.payment_id}"


async def refund_waits_across_runs(harness: Harness) -> str:
    """A partial refund of a sale that settles on the 120th hourly check: the wait continues
    as new after 100 checks."""
    payment_id = await paid_payment(harness)
    harness.gateway.settle_on_find = 120
    refund_id = reserve(harness, payment_id, 1000)
    result = await refund(harness, payment_id, refund_id)
    expect("refund_waits_across_runs", (result.status, result.method), ("processed", "refund"))
    return f"refund-{refund_id}"


async def vault_payment_method(harness: Harness) -> str:
    method_id = str(uuid.uuid4())
    vaulted = await run_vault(harness, method_id, "fake-valid-visa-nonce")
    expect("vault_payment_method", vaulted.succeeded, True)
    return f"vault-{method_id}"


async def remove_payment_method(harness: Harness) -> str:
    method_id = str(uuid.uuid4())
    await run_vault(harness, method_id, "fake-valid-visa-nonce")
    await run_removal(harness, method_id)
    expect("remove_payment_method", harness.gateway.vaulted, {})
    return f"remove-{method_id}"


async def reconciliation(harness: Harness) -> str:
    """One run meeting every kind of open item: an orphan the gateway charged (recorded and
    announced), an orphan it never saw (failed as abandoned, announced), an initiated refund
    without its workflow (started again) and a payment whose workflow still waits (left alone);
    then the purge of expired idempotency keys."""
    items = await open_items(harness)
    charged, never_charged, orphan_refund = items.charged, items.never_charged, items.orphan_refund
    waiting, running = items.waiting, items.running

    workflow_id = f"reconciliation-{uuid.uuid4()}"
    report = await harness.client.execute_workflow(
        ReconciliationWorkflow.run,
        ReconciliationRequest(min_age_seconds=0),
        id=workflow_id,
        task_queue=harness.task_queue,
    )
    actions = {finding.id: finding.action for finding in report.findings}
    expect(
        "reconciliation",
        actions,
        {
            charged.payment_id: "recorded_success",
            never_charged.payment_id: "recorded_failure",
            orphan_refund.refund_id: "restarted",
            waiting.payment_id: "none",
        },
    )
    restarted = harness.client.get_workflow_handle(
        f"refund-{orphan_refund.refund_id}", result_type=RefundSnapshot
    )
    await restarted.result()
    await running.terminate("recorded: its own path is recorded elsewhere")
    return workflow_id


async def payment_fraud_declined(harness: Harness) -> str:
    """A blocklisted user: declined before any charge."""
    req = request()
    harness.db.fraud.block("user", req.user_id, "recorded path", created_by=None)
    result = await run(harness, req)
    expect(
        "payment_fraud_declined",
        (result.status, result.failure_reason),
        ("failure", "fraud_declined"),
    )
    return f"payment-{req.payment_id}"


async def _held(harness: Harness) -> WorkflowHandle[PaymentWorkflow, PaymentSnapshot]:
    req = request()
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    await wait_for_step(handle, "awaiting_review")
    return handle


async def payment_review_approved(harness: Harness) -> str:
    """Scored for review: authorized, held; approved (the review update), captured."""
    handle = await _held(harness)
    await handle.execute_update(PaymentWorkflow.review, ReviewDecision("approve", "ok", "key"))
    expect("payment_review_approved", (await handle.result()).status, "success")
    return handle.id


async def payment_review_declined(harness: Harness) -> str:
    """Scored for review: authorized, held; declined, voided."""
    handle = await _held(harness)
    await handle.execute_update(PaymentWorkflow.review, ReviewDecision("decline", "", "key"))
    expect("payment_review_declined", (await handle.result()).failure_reason, "fraud_declined")
    return handle.id


async def payment_review_deadline(harness: Harness) -> str:
    """Scored for review, nobody decides: voided at the deadline."""
    handle = await _held(harness)
    expect("payment_review_deadline", (await handle.result()).failure_reason, "fraud_declined")
    return handle.id


async def payment_fraud_check_failed_open(harness: Harness) -> str:
    """The payment-method look-up never answers: past the step's timeout, approved."""
    harness.gateway.describe_unavailable = True
    req = replace(
        request(), policy=replace(POLICY, fraud=FraudPolicy(timeout_seconds=2, fail_open=True))
    )
    expect("payment_fraud_check_failed_open", (await run(harness, req)).status, "success")
    return f"payment-{req.payment_id}"


# Fraud settings of the worker of a path, when not the test stacks' (every payment reviewed).
FRAUD_OF_PATH = {
    "payment_review_approved": FraudSettings(model_review_score=0),
    "payment_review_declined": FraudSettings(model_review_score=0),
    "payment_review_deadline": FraudSettings(model_review_score=0),
}

PATHS: dict[str, RecordedPath] = {
    path.__name__: path
    for path in (
        payment_success,
        payment_answered_by_update,
        payment_decline,
        payment_bank_pending_then_settled,
        payment_soft_decline_retried,
        payment_soft_decline_cancelled,
        refund_settled_payment,
        refund_void,
        refund_partial_waits_for_settlement,
        payment_pending_across_runs,
        payment_retries_across_runs,
        refund_waits_across_runs,
        vault_payment_method,
        remove_payment_method,
        reconciliation,
        payment_fraud_declined,
        payment_review_approved,
        payment_review_declined,
        payment_review_deadline,
        payment_fraud_check_failed_open,
    )
}


@asynccontextmanager
async def fresh_harness(
    client: Client, executor: ThreadPoolExecutor, files: Path, fraud: FraudSettings | None = None
) -> AsyncIterator[Harness]:
    """The workflow tests' harness over a new SQLite database of its own (``files``.db), so
    that one path's leftovers never enter another's history."""
    url = f"sqlite:///{files}.db"
    upgrade(url)
    engine = create_db_engine(DatabaseSettings(url=url))
    await asyncio.to_thread(files.mkdir, parents=True, exist_ok=True)
    try:
        async with worker_harness(
            client, Database(engine), executor, files, fraud=fraud
        ) as harness:
            yield harness
    finally:
        engine.dispose()


async def record_all(paths: dict[str, RecordedPath]) -> dict[str, WorkflowHistory]:
    """Every path run on one time-skipping server; the history of each."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(),
        data_converter=DATA_CONVERTER,
        # Errors only: the SDK core warns once per worker that the test server is too old to
        # keep heartbeat details (no activity here heartbeats), which says nothing here.
        runtime=Runtime(
            telemetry=TelemetryConfig(
                logging=LoggingConfig(
                    filter=TelemetryFilter(core_level="ERROR", other_level="WARN")
                )
            )
        ),
    )
    histories: dict[str, WorkflowHistory] = {}
    try:
        await register_search_attributes(env.client, env.client.namespace)
        with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(8) as executor:
            for name, path in paths.items():
                async with fresh_harness(
                    env.client, executor, Path(scratch) / name, FRAUD_OF_PATH.get(name)
                ) as harness:
                    workflow_id = await path(harness)
                    handle = harness.client.get_workflow_handle(workflow_id)
                    histories[name] = await handle.fetch_history()
    finally:
        await env.shutdown()
    return histories


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.replay.record", description=__doc__.splitlines()[0]
    )
    parser.add_argument("label", help="the version recorded: a short commit, a tag, a word")
    parser.add_argument(
        "--into", type=Path, default=HISTORIES, help="where version folders go (%(default)s)"
    )
    args = parser.parse_args(argv)
    if not LABEL.match(args.label):
        parser.error(f"label {args.label!r}: letters, digits, '.', '_' and '-' only")
    target: Path = args.into / args.label
    if target.exists():
        # Histories of a version are a record once committed: never overwritten in passing.
        print(f"{target} exists: remove it first, or choose another label", file=sys.stderr)
        return 1
    histories = asyncio.run(record_all(PATHS))
    target.mkdir(parents=True)
    for name, history in histories.items():
        file = target / f"{name}.json"
        file.write_text(history.to_json() + "\n")
        size = file.stat().st_size
        print(f"{file}: {len(history.events)} events, {size / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
