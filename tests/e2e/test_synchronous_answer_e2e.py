"""End to end: ``Prefer: wait=N`` on POST /initiate-payment and POST /refund answers with the
final outcome when it comes in time (update-with-start on the real Temporal dev server), and
with the usual 202 otherwise."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from devtools.events import EventReader
from payments.events.topics import PAYMENT_STATUS, REFUND_REQUEST
from tests.e2e.conftest import Stack
from tests.e2e.test_payments_e2e import payment_body, wait_status

pytestmark = pytest.mark.e2e

WAIT_5 = {"Prefer": "wait=5"}


async def update_events(stack: Stack, workflow_id: str) -> list[EventType.ValueType]:
    client = await Client.connect(stack.endpoints.temporal_address)
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return [
        e.event_type
        for e in history.events
        if e.event_type
        in (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
        )
    ]


async def test_a_payment_answers_with_its_outcome_when_asked_to_wait(
    api: httpx.AsyncClient, events: EventReader, stack: Stack
) -> None:
    response = await api.post("/initiate-payment", json=payment_body(), headers=WAIT_5)
    assert response.status_code == 200, response.text
    assert response.headers["Preference-Applied"] == "wait=5"
    payment = response.json()
    assert payment["payment_status"] == "success" and payment["transaction_id"]
    assert response.headers["Location"] == f"/payment/{payment['payment_id']}"
    # The same as stored, announced once each, and answered by the workflow's update (started
    # with the run), not by reading the database until it changes.
    assert (await api.get(response.headers["Location"])).json() == payment
    announced = await events.wait_for(
        PAYMENT_STATUS, lambda found: len(found) == 2, payment_id=payment["payment_id"]
    )
    assert [e["status"] for e in announced] == ["pending", "success"]
    assert await update_events(stack, f"payment-{payment['payment_id']}") == [
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
    ]

    # A declined payment is final too; a retry with the key answers at once, the same.
    headers = {**WAIT_5, "Idempotency-Key": uuid.uuid4().hex}
    body = payment_body(amount="2000.00")
    declined = await api.post("/initiate-payment", json=body, headers=headers)
    assert declined.status_code == 200, declined.text
    assert declined.json()["payment_status"] == "failure"
    assert declined.json()["failure_reason"] == "processor_declined"
    replayed = await api.post("/initiate-payment", json=body, headers=headers)
    assert replayed.status_code == 200
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == declined.json()


async def test_a_payment_that_waits_for_settlement_answers_pending_at_once(
    api: httpx.AsyncClient,
) -> None:
    started = time.monotonic()
    response = await api.post(
        "/initiate-payment",
        json=payment_body(
            payment_method="bank_transfer", payment_token="fake-us-bank-account-nonce"
        ),
        headers={"Prefer": "wait=8"},
    )
    took = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert "Preference-Applied" not in response.headers
    assert response.json()["payment_status"] == "pending"
    # Not the whole 8 s: the workflow answers as soon as it begins to wait for settlement.
    assert took < 5, took


async def test_a_refund_answers_with_its_outcome_when_asked_to_wait(
    api: httpx.AsyncClient, events: EventReader
) -> None:
    paid = await api.post("/initiate-payment", json=payment_body(), headers=WAIT_5)
    assert paid.json()["payment_status"] == "success"
    response = await api.post(
        "/refund",
        json={"payment_id": paid.json()["payment_id"], "reason": "customer request"},
        headers={"Prefer": "respond-async, wait=60"},  # capped at 10 s
    )
    assert response.status_code == 200, response.text
    assert response.headers["Preference-Applied"] == "wait=10"
    refund = response.json()
    assert refund["refund_status"] == "processed"
    assert (await api.get(f"/refund/{refund['refund_id']}")).json() == refund
    announced = await events.wait_for(
        REFUND_REQUEST, lambda found: len(found) == 2, refund_id=refund["refund_id"]
    )
    assert [e["status"] for e in announced] == ["initiated", "processed"]
    payment = await wait_status(api, f"/payment/{paid.json()['payment_id']}", "payment_status")
    assert payment["refunded_amount"] == payment["amount"]


@pytest.mark.parametrize("prefer", ["wait=0", "wait=soon", "handling=lenient", ""])
async def test_without_a_usable_wait_the_answer_is_the_usual_pending(
    api: httpx.AsyncClient, prefer: str
) -> None:
    response = await api.post("/initiate-payment", json=payment_body(), headers={"Prefer": prefer})
    assert response.status_code == 202, response.text
    assert response.json()["payment_status"] == "pending"
    assert "Preference-Applied" not in response.headers
