"""The API process is killed (SIGKILL) in the middle of POST /initiate-payment and started
again; the client retries with the same Idempotency-Key and body.

Proves: the retry answers 202 with the original payment (the first answer's if there was one,
the row the first attempt wrote if it got that far), the order has exactly one payment
(GET /payments?order_id=) that succeeds, and the gateway holds exactly one sale for it.

Two ways to land the kill:
- right after sending, after a few different delays: the request may not have arrived, may be
  half-way, or may have been answered; every outcome of the first request is accepted;
- deterministically between "row written" and "workflow started": the Temporal server is frozen
  (SIGSTOP) so that the API's start of the workflow hangs after the row is stored; the API is
  killed then, Temporal resumed. The retry finds the pending row and (re)starts its workflow.
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


async def _retry_gets_the_original(
    stack: ResilienceStack,
    body: dict[str, Any],
    key: str,
    first: httpx.Response | BaseException,
    written: str | None = None,
) -> None:
    """``written``: the payment the first attempt is known to have stored."""
    expected_id = written
    if isinstance(first, httpx.Response):
        assert first.status_code == 202, first.text
        expected_id = first.json()["payment_id"]
    else:
        assert isinstance(first, httpx.TransportError), repr(first)

    retry = await _post(stack, body, key)
    assert isinstance(retry, httpx.Response), repr(retry)
    assert retry.status_code == 202, retry.text
    if expected_id is not None:
        assert retry.json()["payment_id"] == expected_id
    expected_id = retry.json()["payment_id"]

    async with stack.api_client() as api:
        final = await wait_all_terminal(api, [expected_id], seconds=30)
        assert final[expected_id]["payment_status"] == "success", final
        listed = await api.get("/payments", params={"order_id": body["order_id"]})
        assert listed.status_code == 200, listed.text
        assert [p["payment_id"] for p in listed.json()["items"]] == [expected_id]
    [sale] = await stack.sales(body["order_id"])
    assert sale["id"] == final[expected_id]["transaction_id"]
    temporal = await stack.temporal()
    assert await workflow_status(temporal, f"payment-{expected_id}") == "COMPLETED"


@pytest.mark.parametrize("kill_after_seconds", [0.0, 0.02, 0.1])
async def test_api_killed_right_after_the_request_was_sent(
    stack: ResilienceStack, kill_after_seconds: float
) -> None:
    body = payment_body()
    key = f"checkout-{body['order_id']}"
    first_attempt = asyncio.create_task(_post(stack, body, key))
    await asyncio.sleep(kill_after_seconds)
    await stack.kill("api")
    first = await first_attempt
    print(f"kill after {kill_after_seconds} s: first attempt -> {first!r}")
    await stack.restart("api")
    await _retry_gets_the_original(stack, body, key, first)
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
    await _retry_gets_the_original(stack, body, key, first, written=payment_id)
    stack.assert_no_crash()
