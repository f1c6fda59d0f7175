from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from payments.config import PolicySettings
from payments.contracts import RefundRequest, RefundSnapshot
from payments.db.models import Refund
from payments.events import topics
from payments.money import Money
from tests.workflows.conftest import Harness, wait_for_step
from tests.workflows.test_payment_workflow import request, run
from workflows.refund import RefundWorkflow
from workflows.search_attributes import refund_attributes


async def paid_payment(harness: Harness, amount_minor: int = 4999) -> str:
    req = request(amount_minor)
    result = await run(harness, req)
    assert result.status == "success"
    return req.payment_id


def reserve(harness: Harness, payment_id: str, amount: int | None) -> str:
    refund, _ = harness.db.refunds.reserve(
        Refund(
            refund_id=str(uuid.uuid4()),
            merchant_id="default",
            payment_id=payment_id,
            amount=amount or 0,
            currency="USD",
            reason="test",
        ),
        whole_remainder=amount is None,
    )
    return refund.refund_id


async def refund(
    harness: Harness, payment_id: str, refund_id: str, **timing: Any
) -> RefundSnapshot:
    request = RefundRequest(
        refund_id=refund_id,
        payment_id=payment_id,
        policy=replace(PolicySettings().refund_policy(), **timing),
    )
    return await harness.client.execute_workflow(
        RefundWorkflow.run,
        request,
        id=f"refund-{refund_id}",
        task_queue=harness.task_queue,
        search_attributes=refund_attributes(request),
    )


async def partial_refund_polled_hourly(
    harness: Harness, payment_id: str, *, deadline_hours: int
) -> RefundSnapshot:
    """A refund of 10.00 of the payment, whose workflow asks every hour whether the sale
    has settled, until the deadline."""
    return await refund(
        harness,
        payment_id,
        reserve(harness, payment_id, 1000),
        settlement_check_schedule_seconds=[3600.0],
        settlement_deadline_seconds=deadline_hours * 3600,
    )


async def test_full_refund_before_settlement_voids(harness: Harness) -> None:
    payment_id = await paid_payment(harness)
    result = await refund(harness, payment_id, reserve(harness, payment_id, None))
    assert result.status == "processed"
    assert result.method == "void"
    assert result.payment_refunded_minor == 4999
    statuses = [e["status"] for e in harness.publisher.of(topics.REFUND_REQUEST, payment_id)]
    assert statuses == ["initiated", "processed"]


async def test_partial_refund_waits_durably_for_settlement(harness: Harness) -> None:
    payment_id = await paid_payment(harness)
    harness.gateway.settle_on_find = 4  # settles after three hours of polling
    result = await partial_refund_polled_hourly(harness, payment_id, deadline_hours=24)
    assert result.status == "processed"
    assert result.method == "refund"
    assert result.payment_refunded_minor == 1000
    assert [op for op, _ in harness.gateway.calls].count("find") == 4


async def test_partial_refund_fails_when_settlement_never_comes(harness: Harness) -> None:
    payment_id = await paid_payment(harness)
    result = await partial_refund_polled_hourly(harness, payment_id, deadline_hours=2)
    assert result.status == "failed"
    assert result.failure_reason == "settlement_timeout"
    # The failed refund's amount is refundable again.
    assert harness.db.refunds.remainder(payment_id) == 4999


async def test_settled_payment_refunds_in_parts(harness: Harness) -> None:
    payment_id = await paid_payment(harness)
    sale = harness.db.payments.get(payment_id)
    assert sale is not None and sale.transaction_id is not None
    harness.gateway.settle(sale.transaction_id)
    first = await refund(harness, payment_id, reserve(harness, payment_id, 2000))
    rest = await refund(harness, payment_id, reserve(harness, payment_id, None))
    assert (first.status, first.method, rest.status, rest.method) == (
        "processed",
        "refund",
        "processed",
        "refund",
    )
    assert rest.amount_minor == 2999
    assert rest.payment_refunded_minor == 4999


async def test_a_refund_worth_nothing_of_the_charge_gives_nothing_back(harness: Harness) -> None:
    """A payment shown as 1.000 KWD was charged 3.25 USD: a refund of 1 fils is worth a
    third of a cent, so its share of the charge is nothing. Nothing is asked of the gateway
    (it refuses a zero amount) and the refund is processed; the refund of the rest gives
    back the whole charge."""
    req = replace(
        request(325),
        presented_amount_minor=1000,
        presented_currency="KWD",
        exchange_rate="3.2537",
    )
    assert (await run(harness, req)).status == "success"
    sale = harness.db.payments.get(req.payment_id)
    assert sale is not None and sale.transaction_id is not None
    harness.gateway.settle(sale.transaction_id)

    tiny = await refund(harness, req.payment_id, reserve(harness, req.payment_id, 1))
    assert (tiny.status, tiny.method, tiny.failure_reason) == ("processed", "refund", None)
    rest = await refund(harness, req.payment_id, reserve(harness, req.payment_id, None))
    assert (rest.status, rest.payment_refunded_minor) == ("processed", 1000)
    credits = [t for t in harness.gateway.transactions.values() if t.type == "credit"]
    assert [c.amount for c in credits] == [Money(325, "USD")]


async def test_a_nudge_wakes_a_refund_waiting_for_settlement(harness: Harness) -> None:
    """A settlement webhook signals check_now: the refund tries at once, not at its next
    hourly check."""
    payment_id = await paid_payment(harness)
    refund_id = reserve(harness, payment_id, 1000)
    handle = await harness.client.start_workflow(
        RefundWorkflow.run,
        RefundRequest(
            refund_id=refund_id,
            payment_id=payment_id,
            policy=replace(
                PolicySettings().refund_policy(), settlement_check_schedule_seconds=[3600.0]
            ),
        ),
        id=f"refund-{refund_id}",
        task_queue=harness.task_queue,
    )
    await wait_for_step(handle, "waiting_for_settlement")
    sale = harness.db.payments.get(payment_id)
    assert sale is not None and sale.transaction_id is not None
    harness.gateway.settle(sale.transaction_id)
    await handle.signal(RefundWorkflow.check_now)
    result = await handle.result()
    assert (result.status, result.method) == ("processed", "refund")
    events = (await handle.fetch_history()).events
    waited = events[-1].event_time.ToDatetime() - events[0].event_time.ToDatetime()
    assert waited.total_seconds() < 3600
