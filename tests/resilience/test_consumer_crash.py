"""The Kafka consumer is killed (SIGKILL) after it handled a ``payment_initiation`` message —
the payment is stored and its workflow started — but before it committed the message's
offset; it is started again and the broker delivers the message a second time.

Proves: the redelivered message starts nothing new (it is recognised by its idempotency key):
the order has one payment, which succeeds, one workflow, and one sale at the gateway; and the
consumer does finish with the message after the restart (its offset is committed then).

Where the kill lands is controlled: the Temporal server is frozen (SIGSTOP) while the message
is sent, so the consumer waits at "start the workflow" with the payment stored and its start
request sent; then the consumer is frozen too and Temporal resumed: Temporal starts the
workflow from the request it holds, while the consumer never reads the answer, let alone
commits. Once the workflow exists, the consumer is killed. (Freezing the broker instead would
not do: the commit request would wait in the broker's socket and be applied on resume.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from payments.events.topics import PAYMENT_INITIATION
from tests.resilience.support import (
    ResilienceStack,
    payment_body,
    running_stack,
    wait_all_terminal,
    workflow_status,
)
from tests.support import kafka

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# How long the consumer may take from storing the payment to sending the workflow's start.
START_REQUEST_SENT_WITHIN_SECONDS = 2.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResilienceStack]:
    with running_stack(tmp_path_factory.mktemp("consumer-crash")) as running:
        yield running


def initiation_message(**overrides: Any) -> dict[str, Any]:
    return {
        **payment_body(**overrides),
        "merchant_id": "dev-merchant",
        "idempotency_key": f"msg-{uuid.uuid4()}",
    }


async def send(stack: ResilienceStack, message: dict[str, Any]) -> kafka.Sent:
    return await kafka.send(
        stack.settings.kafka,
        stack.settings.kafka.topic(PAYMENT_INITIATION),
        json.dumps(message).encode(),
        key=message["order_id"].encode(),
    )


async def stored_payment_id(stack: ResilienceStack, order_id: str, *, seconds: float) -> str:
    """The id of the order's payment, once the consumer has stored it."""
    async with stack.api_client(timeout=5) as api:
        deadline = time.monotonic() + seconds
        while True:
            listed = await api.get("/payments", params={"order_id": order_id})
            assert listed.status_code == 200, listed.text
            if listed.json()["items"]:
                payment_id: str = listed.json()["items"][0]["payment_id"]
                return payment_id
            assert time.monotonic() < deadline, f"no payment of {order_id} was stored"
            await asyncio.sleep(0.05)


async def workflow_started(temporal: Client, workflow_id: str, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            await temporal.get_workflow_handle(workflow_id).describe()
            return
        except RPCError:  # not found (yet)
            assert time.monotonic() < deadline, f"{workflow_id} was never started"
            await asyncio.sleep(0.05)


async def test_consumer_killed_before_its_commit(stack: ResilienceStack) -> None:
    settings = stack.settings.kafka
    # The consumer has joined its group and committed once: the path is warm.
    warm = await send(stack, initiation_message())
    await kafka.wait_committed(settings, warm, seconds=60)

    temporal = await stack.temporal()
    message = initiation_message()
    consumer_frozen = contextlib.ExitStack()
    try:
        with stack.frozen("temporal"):
            sent = await send(stack, message)
            # Stored; the consumer now waits for Temporal to start the workflow. The margin
            # lets it send the start request, which the frozen server keeps in its socket.
            payment_id = await stored_payment_id(stack, message["order_id"], seconds=30)
            await asyncio.sleep(START_REQUEST_SENT_WITHIN_SECONDS)
            consumer_frozen.enter_context(stack.frozen("consumer"))
        # Temporal resumed: the workflow starts; the consumer cannot go on to commit.
        await workflow_started(temporal, f"payment-{payment_id}", seconds=30)
        await stack.kill("consumer")
    finally:
        consumer_frozen.close()
    assert await kafka.committed(settings, sent.partition) < sent.next_offset, "committed"

    await stack.restart("consumer")
    # Delivered again and handled: the consumer is done with it only now.
    await kafka.wait_committed(settings, sent, seconds=60)

    async with stack.api_client() as api:
        final = await wait_all_terminal(api, [payment_id], seconds=60)
        assert final[payment_id]["payment_status"] == "success", final
        listed = await api.get("/payments", params={"order_id": message["order_id"]})
        assert [p["payment_id"] for p in listed.json()["items"]] == [payment_id]
    [sale] = await stack.sales(message["order_id"])
    assert sale["id"] == final[payment_id]["transaction_id"]
    assert await workflow_status(temporal, f"payment-{payment_id}") == "COMPLETED"
    stack.assert_no_crash()
