"""End to end, issue by issue of the gateway: every payment method, asynchronous bank
settlement (webhooks, external status events, /verify-payment), vaulted methods,
reconciliation, the Order Service, and ambiguous gateway failures that must not charge twice.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from devtools.events import EventReader
from payments.config import DatabaseSettings
from payments.db.engine import create_db_engine
from payments.db.repositories.payments import PaymentRepository
from payments.events.topics import PAYMENT_STATUS
from tests.e2e.conftest import OrderStack, Stack
from tests.e2e.test_payments_e2e import pay, payment_body, wait_status
from tests.support.rows import payment_row

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("nonce", "method", "instrument_type", "display_contains"),
    [
        ("fake-valid-visa-nonce", "credit_card", "credit_card", "Visa"),
        ("fake-valid-mastercard-nonce", "credit_card", "credit_card", "MasterCard"),
        ("fake-valid-debit-nonce", "debit_card", "credit_card", "ending"),
        ("fake-apple-pay-visa-nonce", "wallet", "apple_pay_card", "Apple Pay"),
        ("fake-android-pay-nonce", "wallet", "android_pay_card", "Google Pay"),
        ("fake-paypal-one-time-nonce", "wallet", "paypal_account", "PayPal"),
        ("fake-venmo-account-nonce", "wallet", "venmo_account", "Venmo"),
    ],
)
async def test_every_payment_method(
    api: httpx.AsyncClient, nonce: str, method: str, instrument_type: str, display_contains: str
) -> None:
    payment = await pay(api, payment_token=nonce, payment_method=method)
    assert payment["payment_status"] == "success", payment
    details = payment["payment_method_details"]
    assert details["instrument_type"] == instrument_type
    assert display_contains in (details["display"] or "")


async def signals_of(stack: Stack, payment_id: str) -> int:
    client = await Client.connect(stack.endpoints.temporal_address)
    history = await client.get_workflow_handle(f"payment-{payment_id}").fetch_history()
    return sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    )


async def pending_bank_payment(
    api: httpx.AsyncClient, amount: str = "49.99", nonce: str = "fake-sepa-direct-debit-nonce"
) -> dict[str, Any]:
    response = await api.post(
        "/initiate-payment",
        json=payment_body(
            amount=amount,
            payment_method="bank_transfer",
            payment_token=nonce,
        ),
    )
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    for _ in range(100):
        body: dict[str, Any] = (await api.get(location)).json()
        if body["gateway_status"] == "settlement_pending":
            assert body["payment_status"] == "pending"
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"{location} never reached settlement_pending")


@pytest.mark.parametrize(
    ("nonce", "instrument_type"),
    [
        ("fake-sepa-direct-debit-nonce", "sepa_debit_account"),
        ("fake-us-bank-account-nonce", "us_bank_account"),
    ],
)
async def test_bank_transfer_settles_later_and_is_told_by_webhook(
    api: httpx.AsyncClient, stack: Stack, events: EventReader, nonce: str, instrument_type: str
) -> None:
    payment = await pending_bank_payment(api, nonce=nonce)
    assert payment["payment_method_details"]["instrument_type"] == instrument_type
    # The workflow's first scheduled check is a minute away: only the sandbox's webhook,
    # sent when the transfer settles, can end it this soon.
    done = await wait_status(api, f"/payment/{payment['payment_id']}", "payment_status", seconds=30)
    assert (done["payment_status"], done["gateway_status"]) == ("success", "settled")
    await events.wait_for(PAYMENT_STATUS, payment_id=payment["payment_id"], status="success")
    assert await signals_of(stack, payment["payment_id"]) >= 1


async def test_bank_settlement_declined(api: httpx.AsyncClient) -> None:
    payment = await pending_bank_payment(api, amount="4500.00")
    done = await wait_status(api, f"/payment/{payment['payment_id']}", "payment_status", seconds=30)
    assert (done["payment_status"], done["failure_reason"]) == ("failure", "settlement_declined")


async def test_verify_payment_and_external_events_nudge_a_pending_payment(
    api: httpx.AsyncClient, stack: Stack, events: EventReader
) -> None:
    # A transfer the bank will decline (4001.00-5000.99): whatever another producer claims
    # meanwhile, the one correct outcome is the gateway's, failure, whenever the claim comes.
    payment = await pending_bank_payment(api, amount="4500.00")
    payment_id = payment["payment_id"]
    before = await signals_of(stack, payment_id)

    verified = await api.post("/verify-payment", json={"payment_id": payment_id})
    assert verified.status_code == 200
    assert verified.json()["gateway"]["status"] == "settlement_pending"
    assert await signals_of(stack, payment_id) == before + 1

    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:  # an update from another producer (a gateway connector), not ours, and a false one
        await producer.send_and_wait(
            stack.topic(PAYMENT_STATUS),
            json.dumps({"payment_id": payment_id, "status": "success"}).encode(),
            key=payment_id.encode(),
        )
    finally:
        await producer.stop()
    for _ in range(100):
        if await signals_of(stack, payment_id) >= before + 2:
            break
        await asyncio.sleep(0.1)
    assert await signals_of(stack, payment_id) >= before + 2
    # The claim is checked against the gateway, not believed.
    done = await wait_status(api, f"/payment/{payment_id}", "payment_status", seconds=30)
    assert (done["payment_status"], done["failure_reason"]) == ("failure", "settlement_declined")
    [failure] = await events.wait_for(PAYMENT_STATUS, payment_id=payment_id, status="failure")
    assert failure["failure_reason"] == "settlement_declined"
    # Nobody was ever told it succeeded (only the forged message, which is no event of ours).
    assert events.of(PAYMENT_STATUS, payment_id=payment_id, status="success") == []


async def test_forged_webhook_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/webhooks/braintree",
        content=b"bt_signature=abc%7Cdef&bt_payload=PG5vdGlmaWNhdGlvbj4=",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_webhook"


async def test_saved_payment_method(api: httpx.AsyncClient, stack: Stack) -> None:
    assert stack.endpoints.sandbox_url is not None
    async with httpx.AsyncClient(base_url=stack.endpoints.sandbox_url, trust_env=False) as sandbox:
        # What the checkout page does with Braintree's client SDK: the card goes to the
        # gateway, the service only ever sees the nonce.
        tokenized = await sandbox.post(
            "/_sandbox/client/tokenize",
            json={
                "number": "5555555555554444",
                "expiration_month": "12",
                "expiration_year": "2031",
                "cvv": "123",
            },
        )
        assert tokenized.status_code == 200, tokenized.text
    user = f"user-{uuid.uuid4().hex[:8]}"
    saved = await api.post(
        "/payment-methods", json={"user_id": user, "payment_token": tokenized.json()["nonce"]}
    )
    assert saved.status_code == 201, saved.text
    method = saved.json()
    assert (method["brand"], method["last4"], method["expiration"]) == (
        "MasterCard",
        "4444",
        "12/2031",
    )
    assert "5555555555554444" not in saved.text

    listed = (await api.get(f"/users/{user}/payment-methods")).json()["items"]
    assert [m["payment_method_id"] for m in listed] == [method["payment_method_id"]]

    payment = await pay(
        api, user_id=user, payment_token=None, payment_method_id=method["payment_method_id"]
    )
    assert payment["payment_status"] == "success"
    assert payment["payment_method_details"]["last4"] == "4444"

    other_user = await api.post(
        "/initiate-payment",
        json=payment_body(payment_token=None, payment_method_id=method["payment_method_id"]),
    )
    assert other_user.status_code == 422
    assert other_user.json()["error"]["field"] == "payment_method_id"

    assert (await api.delete(f"/payment-methods/{method['payment_method_id']}")).status_code == 204
    assert (await api.get(f"/users/{user}/payment-methods")).json()["items"] == []
    after = await api.post(
        "/initiate-payment",
        json=payment_body(
            user_id=user, payment_token=None, payment_method_id=method["payment_method_id"]
        ),
    )
    assert after.status_code == 422

    refused = await api.post(
        "/payment-methods", json={"user_id": user, "payment_token": "fake-consumed-nonce"}
    )
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "payment_token"
    both = await api.post(
        "/initiate-payment", json=payment_body(payment_method_id=method["payment_method_id"])
    )
    assert both.status_code == 422 and both.json()["error"]["field"] == "payment_token"


async def test_reconciliation_closes_an_abandoned_payment(
    api: httpx.AsyncClient, admin_api: httpx.AsyncClient, stack: Stack, events: EventReader
) -> None:
    # A payment row whose workflow never started (the API died between the two), long ago.
    payments = PaymentRepository(
        create_db_engine(DatabaseSettings(url=stack.settings.database.url))
    )
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    orphan, _ = payments.insert(
        payment_row(
            merchant_id="dev-merchant",
            user_id="user-42",
            amount=1234,
            created_at=long_ago,
            updated_at=long_ago,
        )
    )
    assert (await api.post("/reconciliation/run")).status_code == 403  # operators only
    triggered = await admin_api.post("/reconciliation/run")
    assert triggered.status_code == 202
    done = await wait_status(api, f"/payment/{orphan.payment_id}", "payment_status", seconds=30)
    assert (done["payment_status"], done["failure_reason"]) == ("failure", "abandoned")
    await events.wait_for(PAYMENT_STATUS, payment_id=orphan.payment_id, status="failure")
    for _ in range(50):
        report = await admin_api.get("/reconciliation/latest")
        if report.status_code == 200 and any(
            f["id"] == orphan.payment_id for f in report.json()["findings"]
        ):
            break
        await asyncio.sleep(0.2)
    finding = next(f for f in report.json()["findings"] if f["id"] == orphan.payment_id)
    assert finding["action"] == "recorded_failure"


def order_payment_body(order_id: str) -> dict[str, Any]:
    """user-7's card payment of an order: the Order Service says how much, and in what."""
    return {
        "order_id": order_id,
        "user_id": "user-7",
        "payment_method": "credit_card",
        "payment_token": "fake-valid-nonce",
    }


async def test_order_service_decides_the_amount_and_hears_the_outcome(
    order_stack: OrderStack,
) -> None:
    api, orders = order_stack.api, order_stack.admin
    order = await orders.create_order(user_id="user-7", amount="75.50", currency="EUR")
    first_body = order_payment_body(order["order_id"])
    key = {"Idempotency-Key": f"order-{order['order_id']}"}
    response = await api.post("/initiate-payment", json=first_body, headers=key)
    assert response.status_code == 202, response.text
    assert (response.json()["amount"], response.json()["currency"]) == ("75.50", "EUR")
    done = await wait_status(api, response.headers["Location"], "payment_status")
    assert done["payment_status"] == "success"
    for _ in range(100):
        updated = await orders.order(order["order_id"])
        if updated["status"] == "paid":
            break
        await asyncio.sleep(0.1)
    assert updated["status"] == "paid"
    assert [u["payment_id"] for u in updated["payment_updates"]] == [done["payment_id"]]

    ten_dollars = await orders.create_order(user_id="user-7", amount="10.00", currency="USD")
    mismatch = await api.post(
        "/initiate-payment",
        json={**order_payment_body(ten_dollars["order_id"]), "amount": "9.99", "currency": "USD"},
    )
    assert mismatch.status_code == 422 and mismatch.json()["error"]["field"] == "amount"
    unknown = await api.post("/initiate-payment", json=order_payment_body("no-such-order"))
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "order_id"
    paid_again = await api.post("/initiate-payment", json=order_payment_body(order["order_id"]))
    assert paid_again.status_code == 409
    # The client that paid, retrying with its key: its payment back, not "already paid" (the
    # key is looked up before the order is).
    replay = await api.post("/initiate-payment", json=first_body, headers=key)
    assert replay.status_code == 202, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["payment_id"] == done["payment_id"]
    theirs = await orders.create_order(user_id="user-8", amount="5.00", currency="USD")
    not_yours = await api.post("/initiate-payment", json=order_payment_body(theirs["order_id"]))
    assert not_yours.status_code == 422 and not_yours.json()["error"]["field"] == "user_id"


FAULTS: list[dict[str, Any]] = [
    # Refused before the gateway did anything: a retry must charge.
    {"operation": "sale", "kind": "status", "status_code": 503, "times": 8},
    {"operation": "sale", "kind": "drop", "times": 6},
    # The sale happened, only the answer was lost or mangled: a retry must NOT charge again.
    {
        "operation": "sale",
        "kind": "status",
        "status_code": 502,
        "after_processing": True,
        "times": 8,
    },
    {"operation": "sale", "kind": "malformed", "after_processing": True, "times": 8},
    {"operation": "sale", "kind": "drop", "after_processing": True, "times": 6},
    {
        "operation": "sale",
        "kind": "delay",
        "delay_seconds": 4,
        "after_processing": True,
        "times": 4,
    },
]


async def test_hundred_payments_under_gateway_faults_charge_exactly_once(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    assert stack.endpoints.sandbox_url is not None
    async with httpx.AsyncClient(base_url=stack.endpoints.sandbox_url, trust_env=False) as sandbox:
        for fault in FAULTS:
            (await sandbox.post("/_sandbox/faults", json=fault)).raise_for_status()
        try:
            bodies = [
                payment_body(amount="2000.00" if i % 5 == 0 else f"{10 + i}.00") for i in range(100)
            ]
            accepted = await asyncio.gather(
                *(api.post("/initiate-payment", json=b) for b in bodies)
            )
            assert all(r.status_code == 202 for r in accepted)
            final = await asyncio.gather(
                *(
                    wait_status(api, r.headers["Location"], "payment_status", seconds=240)
                    for r in accepted
                )
            )
            left = (await sandbox.get("/_sandbox/faults")).json()
        finally:
            await sandbox.delete("/_sandbox/faults")
    assert left == [], "every injected fault was hit"
    sales = await stack.sandbox_transactions()
    for body, payment in zip(bodies, final, strict=True):
        of_order = [
            t for t in sales if t["order_id"] == payment["gateway_order_id"] and t["type"] == "sale"
        ]
        approved = [
            t
            for t in of_order
            if t["status"] not in ("processor_declined", "gateway_rejected", "failed")
        ]
        if body["amount"] == "2000.00":
            assert payment["payment_status"] == "failure"
            assert payment["failure_reason"] == "processor_declined"
            assert approved == []
        else:
            assert payment["payment_status"] == "success", payment
            assert len(approved) == 1, of_order
            assert approved[0]["id"] == payment["transaction_id"]
