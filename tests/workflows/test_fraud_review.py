"""The fraud step in the payment workflow, on the time-skipping server: verdicts stored and
announced, blocklists and velocity deciding before the gateway, the step's timeout failing
open or closed, and a payment in review held as an authorization until an operator approves
(captured), declines (voided) or the deadline passes (voided)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from payments.config import FraudSettings, PolicySettings
from payments.contracts import FraudPolicy, PaymentRequest, PaymentSnapshot, ReviewDecision
from payments.db.database import Database
from payments.db.models import Payment
from payments.events import topics
from tests.fakes import VISA_PROFILE
from tests.support.rows import payment_row
from tests.workflows.conftest import Harness, wait_for_step, worker_harness
from tests.workflows.test_payment_workflow import request
from workers.payment_worker import WORKFLOW_RUNNER, WORKFLOWS
from workflows.payment import PaymentWorkflow
from workflows.search_attributes import payment_attributes

# Every payment scored at or above 0 goes to review: the review paths, whatever the model says.
EVERYTHING_REVIEWED = FraudSettings(model_review_score=0)


@pytest.fixture
async def shipped(
    time_skipping_env: WorkflowEnvironment,
    db: Database,
    executor: ThreadPoolExecutor,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    """A worker with the shipped fraud thresholds."""
    async with worker_harness(
        time_skipping_env.client, db, executor, tmp_path, fraud=FraudSettings()
    ) as running:
        yield running


@pytest.fixture
async def reviewing(
    time_skipping_env: WorkflowEnvironment,
    db: Database,
    executor: ThreadPoolExecutor,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    async with worker_harness(
        time_skipping_env.client, db, executor, tmp_path, fraud=EVERYTHING_REVIEWED
    ) as running:
        yield running


def with_policy(req: PaymentRequest, fraud: FraudPolicy) -> PaymentRequest:
    assert req.policy is not None
    return replace(req, policy=replace(req.policy, fraud=fraud))


STARTED: list[WorkflowHandle[PaymentWorkflow, PaymentSnapshot]] = []


@pytest.fixture(autouse=True)
async def _no_run_left_waiting() -> AsyncIterator[None]:
    """A held payment left waiting (a test that failed half-way) would keep the shared
    time-skipping server from skipping time for every test after it."""
    yield
    while STARTED:
        handle = STARTED.pop()
        with contextlib.suppress(RPCError):
            await handle.terminate("test over")


async def start(
    harness: Harness, req: PaymentRequest
) -> WorkflowHandle[PaymentWorkflow, PaymentSnapshot]:
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run,
        req,
        id=f"payment-{req.payment_id}",
        task_queue=harness.task_queue,
        search_attributes=payment_attributes(req),
    )
    STARTED.append(handle)
    return handle


def stored(harness: Harness, payment_id: str) -> Payment:
    payment = harness.db.payments.get(payment_id)
    assert payment is not None
    return payment


def sales(harness: Harness) -> list[str]:
    """What was asked of the gateway that moves money (look-ups left out)."""
    return [op for op, _ in harness.gateway.calls if op != "find"]


async def test_an_approved_payment_keeps_its_verdict_and_announces_it(shipped: Harness) -> None:
    req = request()
    result = await (await start(shipped, req)).result()
    assert result.status == "success"
    assert result.fraud is not None
    assert result.fraud.decision == "approve"
    assert result.fraud.model_version == "fraud-model-v1"
    assert result.fraud.model_score is not None and 0 <= result.fraud.model_score < 80
    payment = stored(shipped, req.payment_id)
    assert payment.fraud_verdict == result.fraud
    assert payment.payment_method_fingerprint is not None and payment.card_bin == "401288"
    [event] = [
        e
        for e in shipped.publisher.of(topics.PAYMENT_STATUS, req.payment_id)
        if e["status"] == "success"
    ]
    assert event["fraud"]["decision"] == "approve"
    assert event["fraud"]["model_version"] == "fraud-model-v1"
    trail = [e.detail for e in shipped.db.audit.trail(req.payment_id) if e.cause == "fraud_check"]
    assert len(trail) == 1 and trail[0] is not None and trail[0].startswith("approve (score ")


@pytest.mark.parametrize("kind", ["user", "fingerprint", "bin"])
async def test_a_blocklisted_payer_is_declined_and_never_charged(
    shipped: Harness, kind: str
) -> None:
    req = replace(request(), user_id=f"user-{uuid.uuid4().hex[:8]}")
    value = {
        "user": req.user_id,
        "fingerprint": shipped.gateway.describe_payment_method(
            payment_method_nonce="fake-valid-nonce"
        ).fingerprint,
        "bin": "401288",
    }[kind]
    shipped.db.fraud.block(kind, value, "chargebacks", created_by="key-test")
    result = await (await start(shipped, req)).result()
    assert (result.status, result.failure_reason) == ("failure", "fraud_declined")
    assert result.fraud is not None and result.fraud.decision == "decline"
    assert result.fraud.reasons[0].rule == f"blocklist_{kind}"
    assert "sale" not in sales(shipped)
    failure = stored(shipped, req.payment_id)
    assert (
        failure.failure_message is not None
        and "blocklisted: chargebacks" in failure.failure_message
    )


@pytest.fixture
async def velocity_only(
    time_skipping_env: WorkflowEnvironment,
    db: Database,
    executor: ThreadPoolExecutor,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    """The shipped user velocity thresholds alone (the fake gateway gives every payment the
    same card, whose own velocity and the learned score would speak first)."""
    fraud = FraudSettings(fingerprint_1h_review_count=10**6, model_review_score=101)
    async with worker_harness(
        time_skipping_env.client, db, executor, tmp_path, fraud=fraud
    ) as running:
        yield running


async def test_more_than_ten_payments_in_ten_minutes_go_to_review(
    velocity_only: Harness,
) -> None:
    shipped = velocity_only
    user = f"user-{uuid.uuid4().hex[:8]}"
    for n in range(10):
        req = replace(request(amount_minor=1000 + n), user_id=user)
        result = await (await start(shipped, req)).result()
        assert result.fraud is not None and result.fraud.decision == "approve", n
    eleventh = replace(request(amount_minor=2000), user_id=user)
    handle = await start(shipped, eleventh)
    await wait_for_step(handle, "awaiting_review")
    payment = stored(shipped, eleventh.payment_id)
    assert payment.fraud_decision == "review" and payment.payment_status == "pending"
    assert (payment.fraud_reasons or [{}])[0].get("rule") == "velocity_user_10m"
    assert payment.gateway_status == "authorized"
    await handle.execute_update(PaymentWorkflow.review, ReviewDecision("approve", "", "key-1"))


async def test_review_approved_is_captured(reviewing: Harness) -> None:
    req = request()
    handle = await start(reviewing, req)
    await wait_for_step(handle, "awaiting_review")
    held = stored(reviewing, req.payment_id)
    assert (held.payment_status, held.gateway_status) == ("pending", "authorized")
    assert held.review_deadline_at is not None
    assert req.payment_id in [p.payment_id for p in reviewing.db.fraud.awaiting_review(limit=100)]
    assert sales(reviewing) == ["sale"]  # authorized, not submitted for settlement

    answer = await handle.execute_update(
        PaymentWorkflow.review, ReviewDecision("approve", "customer called", "key-7")
    )
    assert answer.status == "success"
    assert sales(reviewing) == ["sale", "submit_for_settlement"]
    assert (await handle.result()).status == "success"
    payment = stored(reviewing, req.payment_id)
    assert payment.gateway_status == "submitted_for_settlement"
    assert payment.fraud_decision == "review"  # the verdict stays what it was
    causes = [(e.cause, e.detail) for e in reviewing.db.audit.trail(req.payment_id)]
    assert ("review:approve", "by key key-7: customer called") in causes
    # A second decision is refused: the run has ended (the client maps either error to 409).
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await handle.execute_update(PaymentWorkflow.review, ReviewDecision("decline"))


async def test_review_declined_is_voided(reviewing: Harness) -> None:
    req = request()
    handle = await start(reviewing, req)
    await wait_for_step(handle, "awaiting_review")
    answer = await handle.execute_update(
        PaymentWorkflow.review, ReviewDecision("decline", "stolen card", "key-7")
    )
    assert (answer.status, answer.failure_reason) == ("failure", "fraud_declined")
    assert sales(reviewing) == ["sale", "void"]
    payment = stored(reviewing, req.payment_id)
    assert payment.gateway_status == "voided"
    assert payment.failure_message == "declined in review: stolen card"
    [tx] = reviewing.gateway.transactions.values()
    assert tx.status == "voided"


async def test_no_decision_by_the_deadline_voids(reviewing: Harness) -> None:
    req = with_policy(request(), FraudPolicy(review_deadline_seconds=24 * 3600))
    handle = await start(reviewing, req)
    # The time-skipping server jumps the day once nothing else is going on.
    result = await handle.result()
    assert (result.status, result.failure_reason) == ("failure", "fraud_declined")
    assert sales(reviewing) == ["sale", "void"]
    payment = stored(reviewing, req.payment_id)
    assert payment.failure_message is not None and "deadline" in payment.failure_message
    # The deadline is the workflow's clock (the test server's, far ahead by now).
    assert payment.review_deadline_at is not None


async def test_a_decision_is_refused_unless_the_payment_is_held(
    shipped: Harness, reviewing: Harness
) -> None:
    done = await start(shipped, request())
    assert (await done.result()).status == "success"
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await done.execute_update(PaymentWorkflow.review, ReviewDecision("approve"))

    held = await start(reviewing, request())
    await wait_for_step(held, "awaiting_review")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await held.execute_update(PaymentWorkflow.review, ReviewDecision("maybe"))
    assert "approve or decline" in str(refused.value.cause)
    await held.execute_update(PaymentWorkflow.review, ReviewDecision("decline"))


async def test_the_fraud_step_fails_open_after_its_timeout(shipped: Harness) -> None:
    shipped.gateway.describe_unavailable = True
    req = with_policy(request(), FraudPolicy(timeout_seconds=2, fail_open=True))
    result = await (await start(shipped, req)).result()
    assert result.status == "success"
    assert result.fraud is not None and result.fraud.decision == "approve"
    assert [r.rule for r in result.fraud.reasons] == ["fraud_check_unavailable"]
    assert len(shipped.gateway.described) >= 2  # retried within the bound
    assert "sale" in sales(shipped)


async def test_the_fraud_step_fails_closed_after_its_timeout(shipped: Harness) -> None:
    shipped.gateway.describe_unavailable = True
    req = with_policy(request(), FraudPolicy(timeout_seconds=2, fail_open=False))
    result = await (await start(shipped, req)).result()
    assert (result.status, result.failure_reason) == ("failure", "fraud_declined")
    assert result.fraud is not None and [r.rule for r in result.fraud.reasons] == [
        "fraud_check_unavailable"
    ]
    assert sales(shipped) == []


def test_the_shipped_policy_carries_the_fraud_settings() -> None:
    policy = PolicySettings(
        fraud=FraudSettings(timeout_seconds=3, fail_open=False)
    ).payment_policy()
    assert policy.fraud == FraudPolicy(
        timeout_seconds=3, fail_open=False, review_deadline_seconds=24 * 3600
    )


def earlier_payments(db: Database, user_id: str, ago: list[timedelta], **columns: Any) -> None:
    """Payments of ``user_id`` made ``ago``, stored as the API stores them."""
    now = datetime.now(UTC)
    for delta in ago:
        db.payments.insert(
            payment_row(
                user_id=user_id,
                payment_status="success",
                created_at=now - delta,
                updated_at=now - delta,
                **columns,
            )
        )


MINUTES = [timedelta(minutes=m) for m in (1, 2, 3, 4, 5, 6, 7, 8, 9, 9.5)]


@pytest.mark.parametrize(
    ("rule", "ago", "columns", "amount_minor", "decision"),
    [
        ("velocity_user_10m", MINUTES, {}, 4999, "review"),
        ("velocity_user_10m", MINUTES * 3, {}, 4999, "decline"),
        ("velocity_user_1h", [timedelta(minutes=20 + m) for m in range(30)], {}, 4999, "review"),
        ("velocity_user_24h", [timedelta(hours=2, minutes=10 * m) for m in range(100)], {}, 4999,
         "review"),
        ("amount_user_24h", [timedelta(hours=3)] * 3, {"amount": 9000_00}, 3500_00, "review"),
        ("velocity_fingerprint_1h", [timedelta(minutes=5 + m) for m in range(5)],
         {"payment_method_fingerprint": VISA_PROFILE.fingerprint}, 4999, "review"),
        ("new_user_large_payment", [], {}, 3500_00, "review"),
        ("repeat_payment", [timedelta(minutes=2)], {"amount": 4999}, 4999, "review"),
    ],
)  # fmt: skip
async def test_each_rule_on_the_time_skipping_server(
    shipped: Harness,
    rule: str,
    ago: list[timedelta],
    columns: dict[str, Any],
    amount_minor: int,
    decision: str,
) -> None:
    payer = f"user-{uuid.uuid4().hex[:8]}"
    earlier_payments(shipped.db, payer, ago, **columns)
    req = replace(request(amount_minor=amount_minor), user_id=payer)
    handle = await start(shipped, req)
    if decision == "review":
        await wait_for_step(handle, "awaiting_review")
        payment = stored(shipped, req.payment_id)
        assert payment.fraud_decision == "review"
        await handle.execute_update(PaymentWorkflow.review, ReviewDecision("decline"))
    else:
        result = await handle.result()
        assert (result.status, result.failure_reason) == ("failure", "fraud_declined")
        assert "sale" not in sales(shipped)
    verdict = stored(shipped, req.payment_id).fraud_verdict
    assert verdict is not None and verdict.reasons[0].rule == rule, verdict


def bank_transfer() -> PaymentRequest:
    return replace(
        request(), payment_method="bank_transfer", payment_token="fake-us-bank-account-nonce"
    )


@pytest.mark.parametrize("decision", ["approve", "decline"])
async def test_a_bank_transfer_in_review_is_charged_only_once_approved(
    reviewing: Harness, decision: str
) -> None:
    """A bank debit cannot be authorized and held: nothing is charged before the decision."""
    reviewing.gateway.profiles["fake-us-bank-account-nonce"] = replace(
        VISA_PROFILE, instrument_type="us_bank_account", bin=None
    )
    req = bank_transfer()
    handle = await start(reviewing, req)
    await wait_for_step(handle, "awaiting_review")
    assert sales(reviewing) == []
    assert req.payment_id in [p.payment_id for p in reviewing.db.fraud.awaiting_review(limit=50)]
    answer = await handle.execute_update(PaymentWorkflow.review, ReviewDecision(decision))
    if decision == "approve":
        assert answer.status == "success"
        assert sales(reviewing) == ["sale"]
        [sale] = reviewing.gateway.transactions.values()
        assert sale.status == "submitted_for_settlement"  # charged as any payment
    else:
        assert (answer.status, answer.failure_reason) == ("failure", "fraud_declined")
        assert sales(reviewing) == []
        assert stored(reviewing, req.payment_id).failure_message == ("declined in review")


async def test_a_run_whose_verdict_came_before_its_announcement_replays(
    shipped: Harness,
) -> None:
    """The fraud step runs beside the first announcement; when the broker is the slower of
    the two, the verdict is in first. A worker that picks the run up later (a restart, a
    deploy) must replay that history as it happened."""
    shipped.publisher.delay_seconds = 1.0
    handle = await start(shipped, request())
    assert (await handle.result()).status == "success"
    history = await handle.fetch_history()
    import json

    for e in json.loads(history.to_json())["events"]:
        print(
            e["eventId"],
            e["eventType"],
            json.dumps(
                e.get("markerRecordedEventAttributes", {}).get("details", {}).get("data", {})
            )[:300],
        )
    replayer = Replayer(workflows=WORKFLOWS, workflow_runner=WORKFLOW_RUNNER)
    replayed = await replayer.replay_workflow(
        await handle.fetch_history(), raise_on_replay_failure=False
    )
    assert replayed.replay_failure is None, replayed.replay_failure


async def test_a_decision_after_the_deadline_is_refused(
    reviewing: Harness, time_skipping_env: WorkflowEnvironment
) -> None:
    """Once the deadline has passed the payment is being voided: an approval arriving then
    must be refused, not accepted and ignored."""
    req = with_policy(request(), FraudPolicy(review_deadline_seconds=3600))
    handle = await start(reviewing, req)
    await wait_for_step(handle, "awaiting_review")
    reviewing.gateway.unavailable_times = 3  # the void's look-up is retried for a while
    await time_skipping_env.sleep(3601)
    await wait_for_step(handle, "voiding")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(PaymentWorkflow.review, ReviewDecision("approve"))
    assert "not held for review" in str(refused.value.cause)
    result = await handle.result()
    assert (result.status, result.failure_reason) == ("failure", "fraud_declined")
