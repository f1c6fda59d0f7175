from __future__ import annotations

import uuid

from payments.config import PolicySettings
from payments.contracts import PaymentRequest, PaymentSnapshot
from payments.events import topics
from tests.workflows.conftest import Harness
from workflows.payment import PaymentWorkflow
from workflows.search_attributes import payment_attributes

# The shipped defaults, as a payment started now carries them.
POLICY = PolicySettings().payment_policy()


def request(amount_minor: int = 4999, order_id: str | None = None) -> PaymentRequest:
    return PaymentRequest(
        payment_id=str(uuid.uuid4()),
        order_id=order_id or f"order-{uuid.uuid4().hex[:8]}",
        user_id="user-1",
        amount_minor=amount_minor,
        currency="USD",
        payment_method="credit_card",
        payment_token="fake-valid-nonce",
        policy=POLICY,
    )


async def run(harness: Harness, req: PaymentRequest) -> PaymentSnapshot:
    return await harness.client.execute_workflow(
        PaymentWorkflow.run,
        req,
        id=f"payment-{req.payment_id}",
        task_queue=harness.task_queue,
        search_attributes=payment_attributes(req),
    )


async def test_approved_payment_succeeds_and_is_announced(harness: Harness) -> None:
    req = request()
    result = await run(harness, req)
    assert result.status == "success"
    assert result.transaction_id is not None
    stored = harness.db.payments.get(req.payment_id)
    assert stored is not None and stored.payment_status == "success"
    statuses = [e["status"] for e in harness.publisher.of(topics.PAYMENT_STATUS, req.payment_id)]
    assert statuses == ["pending", "success"]
    [note] = harness.publisher.of(topics.NOTIFICATIONS, req.payment_id)
    assert note["template"] == "payment_success"
    assert "49.99 USD" in note["message"]


async def test_decline_fails_with_code_and_is_not_retried(harness: Harness) -> None:
    harness.gateway.decline_code = "2000"
    req = request()
    result = await run(harness, req)
    assert result.status == "failure"
    assert result.failure_reason == "processor_declined"
    assert result.processor_response_code == "2000"
    assert [op for op, _ in harness.gateway.calls] == ["sale"]


async def test_gateway_outage_is_retried_with_the_same_request_key(harness: Harness) -> None:
    harness.gateway.unavailable_times = 2
    req = request()
    result = await run(harness, req)
    assert result.status == "success"
    keys = [key for op, key in harness.gateway.calls if op == "sale"]
    assert keys == [f"sale-{req.payment_id}"] * 3
    assert len(harness.gateway.transactions) == 1


async def test_amount_over_the_cap_is_refused_before_the_gateway(harness: Harness) -> None:
    result = await run(harness, request(amount_minor=10_000_01))
    assert result.status == "failure"
    assert result.failure_reason == "fraud_declined"
    assert result.fraud is not None and result.fraud.decision == "decline"
    assert result.fraud.reasons[0].rule == "amount_limit"
    # Declined whatever pays: the payment method is not even looked up.
    assert harness.gateway.calls == [] and harness.gateway.described == []


async def test_second_payment_for_an_order_is_a_duplicate(harness: Harness) -> None:
    first = await run(harness, request(order_id="order-dup-wf"))
    assert first.status == "success"
    second = await run(harness, request(order_id="order-dup-wf"))
    assert second.status == "failure"
    assert second.failure_reason == "duplicate_order"
    assert len(harness.gateway.transactions) == 1
