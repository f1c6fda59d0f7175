"""The API process is killed (SIGKILL) in the middle of POST /initiate-payment and started
again; the client retries with the same Idempotency-Key and body.

Proves: the retry answers 202 with the original payment when the first attempt stored one,
and a new one when it did not; the order has exactly one payment (GET /payments?order_id=)
that succeeds, and the gateway holds exactly one sale for it.

Where the kill lands is controlled, never left to timing, so each case has one outcome:
- before the request was read: the API is frozen (SIGSTOP) when the request is sent, then
  killed. Nothing was stored; the retry makes the payment.
- between "row written" and "workflow started": the Temporal server is frozen so that the
  API's start of the workflow hangs after the row is stored; the API is killed then, Temporal
  resumed. The retry finds the pending row and (re)starts its workflow.
- after it answered 202: the answer is lost to the client (as if the connection broke just
  after), the API is killed and started again. The retry is a replay of that payment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.resilience.support import (
    ResilienceStack,
    payment_body,
    running_stack,
    wait_all_terminal,
    workflow_status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResilienceStack]:
    with running_stack(tmp_path_factory.mktemp("api-restart")) as running:
        yield running


async def _post(
    stack: ResilienceStack, body: dict[str, Any], key: str
) -> httpx.Response | BaseException:
    """One attempt of the client, on a connection of its own; its failure is returned."""
    async with stack.api_client(timeout=30) as api:
        try:
            return await api.post("/initiate-payment", json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError as exc:
            return exc


async def _retry_makes_one_payment(
    stack: ResilienceStack, body: dict[str, Any], key: str, *, stored: str | None
) -> None:
    """The client's retry after the kill. ``stored``: the payment the first attempt stored
    (the retry must return it, as a replay), None when it stored nothing (the retry makes
    it)."""
    async with stack.api_client() as api:
        listed = await api.get("/payments", params={"order_id": body["order_id"]})
        assert listed.status_code == 200, listed.text
        assert [p["payment_id"] for p in listed.json()["items"]] == ([stored] if stored else [])

    retry = await _post(stack, body, key)
    assert isinstance(retry, httpx.Response), repr(retry)
    assert retry.status_code == 202, retry.text
    payment_id = retry.json()["payment_id"]
    if stored is None:
        assert "Idempotent-Replayed" not in retry.headers
    else:
        assert payment_id == stored
        assert retry.headers["Idempotent-Replayed"] == "true"

    async with stack.api_client() as api:
        final = await wait_all_terminal(api, [payment_id], seconds=30)
        assert final[payment_id]["payment_status"] == "success", final
        listed = await api.get("/payments", params={"order_id": body["order_id"]})
        assert listed.status_code == 200, listed.text
        assert [p["payment_id"] for p in listed.json()["items"]] == [payment_id]
    [sale] = await stack.sales(body["order_id"])
    assert sale["id"] == final[payment_id]["transaction_id"]
    temporal = await stack.temporal()
    assert await workflow_status(temporal, f"payment-{payment_id}") == "COMPLETED"


async def test_api_killed_before_it_read_the_request(stack: ResilienceStack) -> None:
    body = payment_body()
    key = f"checkout-{body['order_id']}"
    with stack.frozen("api"):
        # The kernel accepts the connection; the frozen process never reads the request.
        first_attempt = asyncio.create_task(_post(stack, body, key))
        await asyncio.sleep(0.5)
        assert not first_attempt.done()
        await stack.kill("api")
        first = await first_attempt
    assert isinstance(first, httpx.TransportError), repr(first)
    await stack.restart("api")
    await _retry_makes_one_payment(stack, body, key, stored=None)
    stack.assert_no_crash()


async def test_api_killed_after_the_row_was_written_before_the_workflow_started(
    stack: ResilienceStack,
) -> None:
    body = payment_body()
    key = f"checkout-{body['order_id']}"
    temporal_server = stack.group["temporal"]
    with stack.frozen("temporal"):
        first_attempt = asyncio.create_task(_post(stack, body, key))
        # The row is there (listed from the database) while the start hangs on Temporal.
        async with stack.api_client(timeout=5) as api:
            deadline = time.monotonic() + 10
            while True:
                listed = await api.get("/payments", params={"order_id": body["order_id"]})
                assert listed.status_code == 200, listed.text
                if listed.json()["items"]:
                    payment_id = listed.json()["items"][0]["payment_id"]
                    break
                assert time.monotonic() < deadline, "the payment row was never written"
                await asyncio.sleep(0.05)
        assert not first_attempt.done()
        await stack.kill("api")
        first = await first_attempt
    assert temporal_server.running and temporal_server.returncode is None
    assert isinstance(first, httpx.TransportError), repr(first)
    await stack.restart("api")
    await _retry_makes_one_payment(stack, body, key, stored=payment_id)
    stack.assert_no_crash()


async def test_api_killed_after_it_answered(stack: ResilienceStack) -> None:
    body = payment_body()
    key = f"checkout-{body['order_id']}"
    first = await _post(stack, body, key)
    assert isinstance(first, httpx.Response) and first.status_code == 202, repr(first)
    # The client never saw that answer (its connection broke just after); the API dies.
    await stack.kill("api")
    await stack.restart("api")
    await _retry_makes_one_payment(stack, body, key, stored=first.json()["payment_id"])
    stack.assert_no_crash()
