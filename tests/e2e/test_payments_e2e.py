"""End to end: HTTP API → Temporal dev server → worker → braintree SDK → sandbox server →
database (SQLite and PostgreSQL) → Kafka, read back with a real consumer."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from devtools.events import EventReader
from payments.events.topics import NOTIFICATIONS, PAYMENT_INITIATION, PAYMENT_STATUS, REFUND_REQUEST
from tests.e2e.conftest import Stack
from tests.support import kafka

pytestmark = pytest.mark.e2e

TERMINAL = {"success", "failure", "processed", "failed"}


def payment_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": f"order-{uuid.uuid4().hex[:10]}",
        "user_id": "user-42",
        "amount": "49.99",
        "currency": "USD",
        "payment_method": "credit_card",
        "payment_token": "fake-valid-nonce",
    }
    body.update(overrides)
    return body


async def wait_status(
    api: httpx.AsyncClient, path: str, field: str, seconds: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        response = await api.get(path)
        if response.status_code == 429:  # a well-behaved client waits as told
            await asyncio.sleep(float(response.headers["Retry-After"]))
            continue
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body[field] in TERMINAL:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} still {body[field]} after {seconds}s")
        await asyncio.sleep(0.2)


async def pay(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await api.post("/initiate-payment", json=payment_body(**overrides))
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/payment/{response.json()['payment_id']}"
    assert response.json()["payment_status"] == "pending"
    return await wait_status(api, response.headers["Location"], "payment_status")


async def refund(
    api: httpx.AsyncClient, payment_id: str, amount: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"payment_id": payment_id, "reason": "customer request"}
    if amount is not None:
        body["amount"] = amount
    return await api.post("/refund", json=body)


async def test_successful_payment(
    api: httpx.AsyncClient, events: EventReader, stack: Stack
) -> None:
    payment = await pay(api)
    assert payment["payment_status"] == "success"
    assert payment["transaction_id"]
    assert payment["amount"] == "49.99" and payment["refunded_amount"] == "0.00"
    payment_id = payment["payment_id"]

    announced = await events.wait_for(
        PAYMENT_STATUS, lambda found: len(found) == 2, payment_id=payment_id
    )
    assert [e["status"] for e in announced] == ["pending", "success"]
    assert {e["_key"] for e in announced} == {payment_id}
    success = announced[1]
    assert success["event_type"] == "payment.success"
    assert success["amount"] == "49.99" and success["currency"] == "USD"
    assert success["order_id"] == payment["order_id"] and success["user_id"] == "user-42"
    [note] = await events.wait_for(NOTIFICATIONS, payment_id=payment_id)
    assert note["template"] == "payment_success"

    # The workflow is visible to operators: completed in Temporal, listed by the Web UI's API.
    assert await stack.workflow_status(f"payment-{payment_id}") == "COMPLETED"
    listed = await stack.ui_workflows(f"WorkflowId='payment-{payment_id}'")
    assert [w["execution"]["workflowId"] for w in listed] == [f"payment-{payment_id}"]

    # One sale at the gateway, settled later by the sandbox.
    sales = await stack.sandbox_transactions(order_id=payment["order_id"])
    assert len(sales) == 1 and sales[0]["id"] == payment["transaction_id"]

    verified = await api.post("/verify-payment", json={"payment_id": payment_id})
    assert verified.status_code == 200
    assert verified.json()["gateway"]["transaction_id"] == payment["transaction_id"]
    assert verified.json()["consistent"] is True


@pytest.mark.parametrize(
    ("overrides", "reason", "code"),
    [
        ({"amount": "2000.00"}, "processor_declined", "2000"),
        ({"amount": "2015.00"}, "processor_declined", "2015"),
        ({"amount": "3000.00"}, "failed", "3000"),
        ({"payment_token": "fake-gateway-rejected-fraud-nonce"}, "gateway_rejected", None),
        ({"amount": "10000.01"}, "fraud_declined", None),
    ],
)
async def test_declined_payment(
    api: httpx.AsyncClient,
    events: EventReader,
    overrides: dict[str, str],
    reason: str,
    code: str | None,
) -> None:
    payment = await pay(api, **overrides)
    assert payment["payment_status"] == "failure"
    assert payment["failure_reason"] == reason
    if code is not None:
        assert payment["processor_response_code"] == code
    [failure] = await events.wait_for(
        PAYMENT_STATUS, payment_id=payment["payment_id"], status="failure"
    )
    assert failure["failure_reason"] == reason
    [note] = await events.wait_for(NOTIFICATIONS, payment_id=payment["payment_id"])
    assert note["template"] == "payment_failure"


async def test_second_payment_for_an_order_is_refused(api: httpx.AsyncClient) -> None:
    first = await pay(api, order_id="order-twice-" + uuid.uuid4().hex)
    second = await pay(api, order_id=first["order_id"])
    assert (first["payment_status"], second["payment_status"]) == ("success", "failure")
    assert second["failure_reason"] == "duplicate_order"


async def test_full_refund_before_settlement_voids(
    api: httpx.AsyncClient, events: EventReader, stack: Stack
) -> None:
    payment = await pay(api)
    response = await refund(api, payment["payment_id"])
    assert response.status_code == 202, response.text
    assert response.json()["amount"] == "49.99" and response.json()["refund_status"] == "initiated"
    done = await wait_status(api, response.headers["Location"], "refund_status")
    assert (done["refund_status"], done["method"]) == ("processed", "void")
    stored = (await api.get(f"/payment/{payment['payment_id']}")).json()
    assert stored["refunded_amount"] == "49.99" and stored["refund_state"] == "full"
    announced = await events.wait_for(
        REFUND_REQUEST, lambda found: len(found) == 2, refund_id=done["refund_id"]
    )
    assert [e["status"] for e in announced] == ["initiated", "processed"]
    assert announced[0]["_key"] == payment["payment_id"]
    [sale] = await stack.sandbox_transactions(order_id=payment["order_id"])
    assert sale["status"] == "voided"


async def test_partial_refunds_wait_for_settlement_then_refund(
    api: httpx.AsyncClient, events: EventReader, stack: Stack
) -> None:
    payment = await pay(api)
    first = await refund(api, payment["payment_id"], "10.00")
    assert first.status_code == 202, first.text
    # Over-refund, counting the 10.00 in flight: refused, nothing written.
    too_much = await refund(api, payment["payment_id"], "40.00")
    assert too_much.status_code == 422
    assert too_much.json()["error"]["field"] == "amount"
    first_done = await wait_status(api, first.headers["Location"], "refund_status", seconds=60)
    assert (first_done["refund_status"], first_done["method"]) == ("processed", "refund")

    rest = await refund(api, payment["payment_id"])  # no amount: the remainder
    assert rest.status_code == 202 and rest.json()["amount"] == "39.99"
    rest_done = await wait_status(api, rest.headers["Location"], "refund_status", seconds=60)
    assert rest_done["refund_status"] == "processed"

    stored = (await api.get(f"/payment/{payment['payment_id']}")).json()
    assert stored["refunded_amount"] == "49.99" and stored["refund_state"] == "full"
    nothing_left = await refund(api, payment["payment_id"], "0.01")
    assert nothing_left.status_code == 409
    credits = [
        t
        for t in await stack.sandbox_transactions()
        if t.get("refunded_transaction_id") == payment["transaction_id"]
    ]
    assert sorted(t["amount"] for t in credits) == ["10.00", "39.99"]
    listed = (await api.get("/refunds", params={"payment_id": payment["payment_id"]})).json()
    assert [r["amount"] for r in listed["items"]] == ["39.99", "10.00"]
    for item in listed["items"]:
        await events.wait_for(REFUND_REQUEST, refund_id=item["refund_id"], status="processed")


async def test_refund_of_a_failed_payment_is_refused(api: httpx.AsyncClient) -> None:
    payment = await pay(api, amount="2000.00")
    response = await refund(api, payment["payment_id"])
    assert response.status_code == 409
    assert "failure" in response.json()["error"]["message"]


async def test_refund_of_a_pending_payment_is_refused(api: httpx.AsyncClient, stack: Stack) -> None:
    # With the worker stopped, the payment stays pending (accepted, not yet processed).
    stack.stop_worker()
    try:
        response = await api.post("/initiate-payment", json=payment_body())
        assert response.status_code == 202
        payment_id = response.json()["payment_id"]
        refused = await refund(api, payment_id)
        assert refused.status_code == 409
        assert "pending" in refused.json()["error"]["message"]
    finally:
        stack.start_worker()
    done = await wait_status(api, f"/payment/{payment_id}", "payment_status")
    assert done["payment_status"] == "success"


async def test_idempotent_replay(api: httpx.AsyncClient, stack: Stack) -> None:
    key = f"idem-{uuid.uuid4()}"
    body = payment_body()
    first = await api.post("/initiate-payment", json=body, headers={"Idempotency-Key": key})
    again = await api.post("/initiate-payment", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 202
    assert again.json()["payment_id"] == first.json()["payment_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    done = await wait_status(api, first.headers["Location"], "payment_status")
    assert done["payment_status"] == "success"
    # After completion a replay still returns the same payment, now with its outcome.
    later = await api.post("/initiate-payment", json=body, headers={"Idempotency-Key": key})
    assert later.json()["payment_id"] == done["payment_id"]
    assert later.json()["payment_status"] == "success"
    assert len(await stack.sandbox_transactions(order_id=body["order_id"])) == 1
    # The same key with another body is a client error, and starts nothing.
    other = await api.post(
        "/initiate-payment", json={**body, "amount": "1.00"}, headers={"Idempotency-Key": key}
    )
    assert other.status_code == 422
    assert other.json()["error"]["type"] == "idempotency_key_reused"


async def test_payment_from_the_initiation_topic_starts_once(
    api: httpx.AsyncClient, events: EventReader, stack: Stack
) -> None:
    """The same message delivered twice (as after a consumer crash before its commit): the
    second is recognised by its idempotency key and starts nothing. Without that, it would
    start a second payment of the order, which the duplicate-order rule would fail: no second
    charge, but a second payment and a failure announced to the order's owner."""
    body = {
        **payment_body(),
        "idempotency_key": f"msg-{uuid.uuid4()}",
        "merchant_id": "dev-merchant",
    }
    sent = await kafka.send(
        stack.settings.kafka,
        stack.topic(PAYMENT_INITIATION),
        json.dumps(body).encode(),
        key=body["order_id"].encode(),
        times=2,
    )
    # The consumer has finished with both deliveries (each handled, then committed).
    await kafka.wait_committed(stack.settings.kafka, sent, seconds=60)
    [success] = await events.wait_for(
        PAYMENT_STATUS, order_id=body["order_id"], status="success", seconds=60
    )
    listed = (await api.get("/payments", params={"order_id": body["order_id"]})).json()
    assert [p["payment_id"] for p in listed["items"]] == [success["payment_id"]]
    assert len(await stack.sandbox_transactions(order_id=body["order_id"])) == 1
    announced = events.of(PAYMENT_STATUS, order_id=body["order_id"])
    assert [(e["payment_id"], e["status"]) for e in announced] == [
        (success["payment_id"], "pending"),
        (success["payment_id"], "success"),
    ]


async def test_listing_filters_and_pages(api: httpx.AsyncClient) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    made = [
        (await api.post("/initiate-payment", json=payment_body(user_id=user))).json()
        for _ in range(3)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"user_id": user, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/payments", params=params)).json()
        seen += [p["payment_id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [p["payment_id"] for p in reversed(made)]
    bad = await api.get("/payments", params={"status": "nope"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "status"


async def test_health(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "temporal": "ok", "kafka": "ok"}


BAD_PAYMENTS = [
    (payment_body(order_id=None), 422, "order_id"),
    ({k: v for k, v in payment_body().items() if k != "amount"}, 422, "amount"),
    (payment_body(amount="0"), 422, "amount"),
    (payment_body(amount="-5.00"), 422, "amount"),
    (payment_body(amount="1.999"), 422, "amount"),
    (payment_body(amount="10.5", currency="JPY"), 422, "amount"),
    (payment_body(amount="1e40"), 422, "amount"),
    (payment_body(amount="99999999999999999999"), 422, "amount"),
    (payment_body(amount=49.99), 422, "amount"),
    (payment_body(amount="abc"), 422, "amount"),
    (payment_body(currency="XYZ"), 422, "currency"),
    (payment_body(currency="US"), 422, "currency"),
    (payment_body(currency="INR"), 422, "currency"),  # valid ISO code, not accepted here
    (payment_body(payment_method="cheque"), 422, "payment_method"),
    (payment_body(payment_token=""), 422, "payment_token"),
    (payment_body(surprise="field"), 422, "surprise"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_PAYMENTS)
async def test_bad_payment_requests(
    api: httpx.AsyncClient, body: dict[str, Any], status: int, field: str
) -> None:
    before = (await api.get("/payments", params={"order_id": str(body.get("order_id"))})).json()
    response = await api.post("/initiate-payment", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field
    after = (await api.get("/payments", params={"order_id": str(body.get("order_id"))})).json()
    assert after["items"] == before["items"]  # nothing written


async def test_malformed_json_and_unknown_ids(api: httpx.AsyncClient) -> None:
    malformed = await api.post(
        "/initiate-payment", content=b'{"order_id": ', headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["error"]["type"] == "malformed_json"
    assert (await api.get(f"/payment/{uuid.uuid4()}")).status_code == 404
    assert (await api.get(f"/refund/{uuid.uuid4()}")).status_code == 404
    unknown = await refund(api, str(uuid.uuid4()))
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "payment_id"
    verify = await api.post("/verify-payment", json={"payment_id": str(uuid.uuid4())})
    assert verify.status_code == 404
    # Whether an amount is valid depends on the payment's currency (its minor units): an
    # unknown payment is a 404 whatever the amount says.
    bad_amount = await api.post(
        "/refund", json={"payment_id": str(uuid.uuid4()), "amount": "-1", "reason": "x"}
    )
    assert bad_amount.status_code == 404 and bad_amount.json()["error"]["field"] == "payment_id"
    no_reason = await api.post("/refund", json={"payment_id": "p"})
    assert no_reason.status_code == 422 and no_reason.json()["error"]["field"] == "reason"


@pytest.mark.parametrize(
    ("amount", "currency"), [("1500", "JPY"), ("12.345", "KWD"), ("20.00", "EUR")]
)
async def test_currencies_keep_their_minor_units(
    api: httpx.AsyncClient, stack: Stack, amount: str, currency: str
) -> None:
    payment = await pay(api, amount=amount, currency=currency)
    assert payment["payment_status"] == "success"
    assert (payment["amount"], payment["currency"]) == (amount, currency)
    [sale] = await stack.sandbox_transactions(order_id=payment["order_id"])
    assert (sale["amount"], sale["currency"]) == (amount, currency)
