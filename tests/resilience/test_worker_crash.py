"""The worker is killed with SIGKILL while 50 payments are in flight, then started again; and
stopped with SIGTERM while a charge waits for the gateway's answer.

Proves: every payment still reaches its correct terminal state (approvals ``success`` with
their transaction, declines ``failure`` / ``processor_declined`` / 2000), every workflow
completes, and the gateway holds exactly one sale per payment, although activities were cut
off half-way and run again.

The kill lands in the most dangerous place on purpose: the sandbox answers the first sales
only 5 s after making them (a fault with ``after_processing``), and the worker is killed as
soon as the first such sale exists, while the 50 payments are being accepted or a moment
after. So at least one charge has happened at the gateway while the worker that made it
never learnt the outcome; its retry must not charge again (the sale carries an
api_request_key, and a retried charge looks for an earlier sale of the order first). The
other payments are caught at earlier steps (recording, announcing, fraud check) and in their
workflow tasks.

Timing: Temporal hands a killed worker's activity to another worker only after the activity's
start_to_close_timeout (workflows/options.py: ledger and fraud 15 s, gateway 20 s, events
30 s) plus the retry interval; the killed worker's sticky workflow tasks time out after 10 s.
The test measures the takeover of the charges: from just before the kill to the moment the
Temporal server recorded the completion of each charge that needed a second attempt (the
restarted worker's). It must stay under TAKEOVER_BOUND_SECONDS: the gateway's start-to-close
(20 s) plus the first retry interval (2 s) plus the retried attempt itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.resilience.support import (
    ResilienceStack,
    activity_attempts,
    get_payment,
    initiate,
    payment_body,
    retried_completions,
    running_stack,
    wait_all_terminal,
    wait_terminal,
    workflow_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAYMENTS = 50
DECLINED_AMOUNT = "2000.00"  # the sandbox's processor decline, response code 2000
IN_FLIGHT_SALES = 3  # sales the sandbox makes at once but answers late
LATE_ANSWER_SECONDS = 5.0  # the window in which the worker is killed
# A charge cut off by the kill is completed by the restarted worker within this long.
TAKEOVER_BOUND_SECONDS = 30.0
SLOW_ANSWER_SECONDS = 5.0  # the gateway's answer to the charge running at SIGTERM


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResilienceStack]:
    with running_stack(tmp_path_factory.mktemp("worker-crash")) as running:
        yield running


async def test_worker_killed_with_50_payments_in_flight(stack: ResilienceStack) -> None:
    # Every fifth payment is declined; the approved ones get distinct amounts.
    bodies = [
        payment_body(amount=DECLINED_AMOUNT if i % 5 == 4 else f"{10 + i}.{i:02d}")
        for i in range(PAYMENTS)
    ]
    async with stack.api_client() as api:
        # The worker is up and polling (it has no readiness probe) before the run starts.
        warm = await initiate(api, payment_body())
        await wait_all_terminal(api, [warm["payment_id"]], seconds=30)
        sales_before = await stack.sale_count()

        await stack.add_sandbox_fault(
            operation="sale",
            kind="delay",
            delay_seconds=LATE_ANSWER_SECONDS,
            after_processing=True,
            times=IN_FLIGHT_SALES,
        )

        async def kill_at_first_sale() -> tuple[float, datetime]:
            """When the worker was killed: monotonic, and wall-clock time to compare with
            the Temporal server's event times (same machine, same clock)."""
            while True:  # polling another process: no event to wait on
                if await stack.sale_count() > sales_before:
                    break
                await asyncio.sleep(0.02)
            killed_wall = datetime.now(UTC)
            await stack.kill("worker")
            return time.monotonic(), killed_wall

        run_started = time.monotonic()
        killer = asyncio.create_task(kill_at_first_sale())
        accepted = await asyncio.gather(*(initiate(api, body) for body in bodies))
        killed_at, killed_wall = await asyncio.wait_for(killer, timeout=30)

        # What the killed worker left unfinished (the database is the truth; nothing moves now).
        left = await asyncio.gather(*(get_payment(api, p["payment_id"]) for p in accepted))
        unfinished = [p for p in left if p["payment_status"] == "pending"]
        charged = await stack.sale_count() - sales_before
        print(
            f"killed the worker {killed_at - run_started:.1f} s into the run: "
            f"{len(unfinished)} of {PAYMENTS} payments pending, {charged} sales made"
        )
        assert len(unfinished) >= PAYMENTS // 2, "the kill came too late to prove much"

        await stack.restart("worker")
        final = await wait_all_terminal(api, (p["payment_id"] for p in accepted), seconds=150)
        print(f"all {PAYMENTS} payments terminal {time.monotonic() - killed_at:.1f} s after kill")

    for body, payment in zip(bodies, accepted, strict=True):
        outcome = final[payment["payment_id"]]
        sales = await stack.sales(body["order_id"])
        assert len(sales) == 1, f"{body['order_id']}: {sales}"
        [sale] = sales
        assert (sale["type"], sale["order_id"], sale["amount"]) == (
            "sale",
            outcome["gateway_order_id"],
            body["amount"],
        )
        if body["amount"] == DECLINED_AMOUNT:
            assert outcome["payment_status"] == "failure", outcome
            assert outcome["failure_reason"] == "processor_declined", outcome
            assert outcome["processor_response_code"] == "2000", outcome
            assert sale["status"] == "processor_declined", sale
        else:
            assert outcome["payment_status"] == "success", outcome
            assert outcome["transaction_id"] == sale["id"], (outcome, sale)
            assert sale["status"] in {"submitted_for_settlement", "settling", "settled"}, sale

    client = await stack.temporal()
    workflow_ids = [f"payment-{p['payment_id']}" for p in accepted]
    statuses = await asyncio.gather(*(workflow_status(client, w) for w in workflow_ids))
    assert set(statuses) == {"COMPLETED"}
    # Temporal ran interrupted activities again; at least the late-answered charges among them.
    attempts = await asyncio.gather(*(activity_attempts(client, w) for w in workflow_ids))
    retried = sorted(
        f"{name}#{attempt}" for found in attempts for name, attempt in found.items() if attempt > 1
    )
    print(f"activities run again after the crash: {retried}")
    recharged = [found for found in attempts if found.get("charge", 1) > 1]
    assert len(recharged) >= 1, attempts
    taken_over = await asyncio.gather(
        *(retried_completions(client, w, "charge") for w in workflow_ids)
    )
    takeovers = sorted(
        (done - killed_wall).total_seconds() for found in taken_over for done in found
    )
    print(f"interrupted charges completed {takeovers} s after the kill")
    assert takeovers, "no charge was taken over by the restarted worker"
    assert max(takeovers) < TAKEOVER_BOUND_SECONDS, takeovers
    stack.assert_no_crash()


async def test_sigterm_lets_the_running_charge_finish(stack: ResilienceStack) -> None:
    """SIGTERM (a deployment, a scale-down) while a charge waits for the gateway's slow
    answer: the worker stops polling but lets the charge finish and report its outcome, then
    exits by itself within its grace period. The charge runs once (attempt 1): no second
    attempt on another worker, no lookup at the gateway."""
    async with stack.api_client() as api:
        warm = await initiate(api, payment_body())
        await wait_all_terminal(api, [warm["payment_id"]], seconds=30)
        sales_before = await stack.sale_count()
        await stack.add_sandbox_fault(
            operation="sale",
            kind="delay",
            delay_seconds=SLOW_ANSWER_SECONDS,
            after_processing=True,
        )
        body = payment_body(amount="23.45")
        payment = await initiate(api, body)
        deadline = time.monotonic() + 30
        while await stack.sale_count() == sales_before:  # the sale is made, its answer late
            assert time.monotonic() < deadline, "the charge never reached the gateway"
            await asyncio.sleep(0.02)

        signalled = time.monotonic()
        exit_code = await stack.terminate("worker")
        stopped_after = time.monotonic() - signalled
        print(f"worker exited {stopped_after:.1f} s after SIGTERM with {exit_code}")

        await stack.restart("worker")  # the workflow's next steps need a worker
        final = await wait_terminal(api, payment["payment_id"], seconds=60)

    client = await stack.temporal()
    attempts = await activity_attempts(client, f"payment-{payment['payment_id']}")
    assert attempts.get("charge") == 1, attempts
    assert exit_code == 0
    assert stopped_after < stack.settings.temporal.graceful_shutdown_seconds
    assert final["payment_status"] == "success", final
    [sale] = await stack.sales(body["order_id"])
    assert final["transaction_id"] == sale["id"]
    stack.assert_no_crash()
