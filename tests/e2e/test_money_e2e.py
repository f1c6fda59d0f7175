"""End to end: money stays correct — concurrent idempotent requests, the refund cap under
concurrency, currencies and conversion, retries of soft declines, the audit trail."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_payments_e2e import pay, payment_body, wait_status

pytestmark = pytest.mark.e2e


async def test_concurrent_requests_with_one_key_start_one_payment(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    body = payment_body()
    key = f"race-{uuid.uuid4()}"
    responses = await asyncio.gather(
        *(
            api.post("/initiate-payment", json=body, headers={"Idempotency-Key": key})
            for _ in range(10)
        )
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["payment_id"] for r in responses}) == 1
    done = await wait_status(api, responses[0].headers["Location"], "payment_status")
    assert done["payment_status"] == "success"
    assert len(await stack.sandbox_transactions(order_id=body["order_id"])) == 1
    listed = (await api.get("/payments", params={"order_id": body["order_id"]})).json()["items"]
    assert len(listed) == 1


async def test_twenty_concurrent_refunds_never_exceed_the_payment(api: httpx.AsyncClient) -> None:
    payment = await pay(api, amount="49.99")
    responses = await asyncio.gather(
        *(
            api.post(
                "/refund",
                json={"payment_id": payment["payment_id"], "amount": "10.00", "reason": "split"},
            )
            for _ in range(20)
        )
    )
    accepted = [r for r in responses if r.status_code == 202]
    refused = [r for r in responses if r.status_code != 202]
    assert len(accepted) == 4
    assert {r.status_code for r in refused} == {422}
    assert all(r.json()["error"]["type"] == "refund_exceeds_remainder" for r in refused)
    for r in accepted:
        done = await wait_status(api, r.headers["Location"], "refund_status", seconds=60)
        assert done["refund_status"] == "processed"
    stored = (await api.get(f"/payment/{payment['payment_id']}")).json()
    assert (stored["refunded_amount"], stored["refund_state"]) == ("40.00", "partial")
    # The remainder stays refundable.
    rest = await api.post(
        "/refund", json={"payment_id": payment["payment_id"], "reason": "the rest"}
    )
    assert rest.status_code == 202 and rest.json()["amount"] == "9.99"


async def test_refund_idempotency_key(api: httpx.AsyncClient) -> None:
    payment = await pay(api)
    key = f"refund-{uuid.uuid4()}"
    body = {"payment_id": payment["payment_id"], "amount": "5.00", "reason": "x"}
    first = await api.post("/refund", json=body, headers={"Idempotency-Key": key})
    again = await api.post("/refund", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 202
    assert first.json()["refund_id"] == again.json()["refund_id"]
    other = await api.post(
        "/refund", json={**body, "amount": "6.00"}, headers={"Idempotency-Key": key}
    )
    assert other.status_code == 422 and other.json()["error"]["type"] == "idempotency_key_reused"


async def test_payment_in_a_currency_without_merchant_account_is_converted(
    api: httpx.AsyncClient, admin_api: httpx.AsyncClient, stack: Stack
) -> None:
    # No other test gives SEK a rate (each database backend has a stack of its own). Without
    # one, a currency without a merchant account is refused, and nothing is written.
    assert (await admin_api.get("/exchange-rates/SEK/USD")).status_code == 404
    order_id = f"order-{uuid.uuid4().hex[:10]}"
    refused = await api.post(
        "/initiate-payment", json=payment_body(currency="SEK", amount="100.00", order_id=order_id)
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "currency"
    assert "no merchant account for SEK" in refused.json()["error"]["message"]
    assert (await api.get("/payments", params={"order_id": order_id})).json()["items"] == []
    assert (await api.put("/exchange-rates/SEK/USD", json={"rate": "0.0951"})).status_code == 403
    rate = await admin_api.put("/exchange-rates/SEK/USD", json={"rate": "0.0951"})
    assert rate.status_code == 200, rate.text

    payment = await pay(api, currency="SEK", amount="100.00")
    assert payment["payment_status"] == "success"
    assert (payment["amount"], payment["currency"]) == ("100.00", "SEK")
    assert (payment["charged_amount"], payment["charged_currency"]) == ("9.51", "USD")
    assert payment["exchange_rate"] == "0.0951" and payment["rate_as_of"]
    [sale] = await stack.sandbox_transactions(order_id=payment["order_id"])
    assert (sale["amount"], sale["currency"]) == ("9.51", "USD")

    # A later rate does not change what this payment's refunds are worth.
    moved = await admin_api.put("/exchange-rates/SEK/USD", json={"rate": "0.2", "override": True})
    assert moved.status_code == 200, moved.text
    part = await api.post(
        "/refund", json={"payment_id": payment["payment_id"], "amount": "50.00", "reason": "x"}
    )
    assert part.status_code == 202
    await wait_status(api, part.headers["Location"], "refund_status", seconds=60)
    rest = await api.post("/refund", json={"payment_id": payment["payment_id"], "reason": "x"})
    done = await wait_status(api, rest.headers["Location"], "refund_status", seconds=60)
    assert done["refund_status"] == "processed"
    credits = [
        t
        for t in await stack.sandbox_transactions()
        if t.get("refunded_transaction_id") == payment["transaction_id"]
    ]
    # 50 SEK at the original rate is 4.755 USD, 4.76 rounded half-even; the second refund
    # takes exactly the rest of the 9.51 charged, so nothing is lost or refunded twice.
    assert sorted(t["amount"] for t in credits) == ["4.75", "4.76"]


async def saved_method(api: httpx.AsyncClient, user_id: str = "user-42") -> dict[str, Any]:
    """The fields that charge a card saved for ``user_id``: what a retrying payment needs (a
    nonce is single use)."""
    saved = await api.post(
        "/payment-methods", json={"user_id": user_id, "payment_token": "fake-valid-visa-nonce"}
    )
    assert saved.status_code == 201, saved.text
    return {"payment_token": None, "payment_method_id": saved.json()["payment_method_id"]}


async def test_soft_decline_with_retry_waits_and_can_be_cancelled(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/initiate-payment",
        json={**payment_body(amount="2001.00", **await saved_method(api)), "retry": True},
    )
    assert response.status_code == 202
    location = response.headers["Location"]
    waiting: dict[str, Any] = {}
    for _ in range(100):
        waiting = (await api.get(location)).json()
        if waiting["next_retry_at"]:
            break
        await asyncio.sleep(0.1)
    assert waiting["payment_status"] == "pending"
    assert (waiting["attempts"], waiting["retry"], waiting["decline_type"]) == (1, True, "soft")
    cancelled = await api.post(f"{location}/cancel")
    assert cancelled.status_code == 200
    assert (cancelled.json()["payment_status"], cancelled.json()["failure_reason"]) == (
        "failure",
        "cancelled",
    )
    again = await api.post(f"{location}/cancel")
    assert again.status_code == 409


async def test_hard_decline_with_retry_fails_at_once(api: httpx.AsyncClient) -> None:
    payment = await pay(api, amount="2015.00", retry=True, **await saved_method(api))
    assert (payment["payment_status"], payment["decline_type"], payment["attempts"]) == (
        "failure",
        "hard",
        1,
    )


async def test_audit_trail(api: httpx.AsyncClient) -> None:
    payment = await pay(api)
    refund = await api.post("/refund", json={"payment_id": payment["payment_id"], "reason": "x"})
    await wait_status(api, refund.headers["Location"], "refund_status", seconds=60)
    trail = (await api.get(f"/payment/{payment['payment_id']}/events")).json()["items"]
    steps = [(e["subject"], e["from_status"], e["to_status"], e["accepted"]) for e in trail]
    assert steps == [
        ("payment", None, "pending", True),
        ("payment", "pending", "pending", True),  # the fraud verdict
        ("payment", "pending", "success", True),
        ("refund", None, "initiated", True),
        ("refund", "initiated", "processed", True),
    ]
    assert trail[1]["cause"] == "fraud_check" and trail[1]["detail"].startswith("approve")
    assert trail[2]["processor_response_code"] == "1000"
    assert (await api.get(f"/payment/{uuid.uuid4()}/events")).status_code == 404
