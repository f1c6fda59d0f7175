"""What a run is found by in the Temporal UI (search attributes, set at start and upserted at
each status change) and the step it shows (its current details)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devtools.stack import find_temporal_cli
from payments.config import PolicySettings
from payments.contracts import RefundRequest
from payments.db.database import Database
from tests.workflows.conftest import Harness, wait_for_step, worker_harness
from tests.workflows.test_payment_workflow import request, run
from tests.workflows.test_refund_workflow import paid_payment, refund, reserve
from workflows.payment import PaymentWorkflow
from workflows.refund import RefundWorkflow
from workflows.search_attributes import (
    AMOUNT_MINOR,
    PAYMENT_STATUS,
    dev_server_flags,
    payment_attributes,
    refund_attributes,
)


def _decoded(fields: Any) -> dict[str, object]:
    # The SDK itself upserts TemporalChangeVersion when a run takes a patch.
    return {
        name: json.loads(payload.data)
        for name, payload in fields.items()
        if name != "TemporalChangeVersion"
    }


async def indexed(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, object], list[object]]:
    """The attributes the run started with, and each upsert after it, from its history."""
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    upserts = [
        _decoded(
            e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        )
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]
    return _decoded(started.search_attributes.indexed_fields), [u for u in upserts if u]


async def current_details(handle: WorkflowHandle[Any, Any]) -> str:
    """What the UI shows under "Current details" (the SDK's built-in metadata query)."""
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert isinstance(metadata, WorkflowMetadata)
    return str(metadata.current_details)


async def test_a_paid_payment_is_found_by_its_ids_and_its_final_status(harness: Harness) -> None:
    req = request()  # of a payment started before merchants existed: the default merchant
    assert (await run(harness, req)).status == "success"
    handle = harness.client.get_workflow_handle(f"payment-{req.payment_id}")
    started, upserts = await indexed(handle)
    assert started == {
        "PaymentId": req.payment_id,
        "OrderId": req.order_id,
        "UserId": "user-1",
        "MerchantId": "default",
        "PaymentStatus": "pending",
        "PaymentMethod": "credit_card",
        "Currency": "USD",
        "AmountMinor": 4999,
    }
    assert upserts == [{"PaymentStatus": "success"}]
    assert await current_details(handle) == "**success**: done"


async def test_a_declined_payment_is_found_as_a_failure(harness: Harness) -> None:
    harness.gateway.decline_code = "2000"
    req = request()
    assert (await run(harness, req)).status == "failure"
    _, upserts = await indexed(harness.client.get_workflow_handle(f"payment-{req.payment_id}"))
    assert upserts == [{"PaymentStatus": "failure"}]


async def test_a_run_started_without_attributes_still_gets_its_status(harness: Harness) -> None:
    # A payment started by an earlier version of the API, which set no attributes.
    req = request()
    await harness.client.execute_workflow(
        PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=harness.task_queue
    )
    started, upserts = await indexed(
        harness.client.get_workflow_handle(f"payment-{req.payment_id}")
    )
    assert started == {}
    assert upserts == [{"PaymentStatus": "success"}]


async def test_the_current_step_shows_while_a_payment_waits(harness: Harness) -> None:
    harness.gateway.sale_status = "settlement_pending"
    req = replace(request(), payment_token="fake-sepa-direct-debit-nonce")
    handle = await harness.client.start_workflow(
        PaymentWorkflow.run,
        req,
        id=f"payment-{req.payment_id}",
        task_queue=harness.task_queue,
        search_attributes=payment_attributes(req),
    )
    await wait_for_step(handle, "waiting_for_settlement")
    assert await current_details(handle) == "**pending**: waiting for settlement"
    _, upserts = await indexed(handle)
    assert upserts == []  # still pending, as it started: nothing to upsert
    await handle.terminate("test over")


async def test_a_refund_is_found_by_its_payment_and_status(harness: Harness) -> None:
    payment_id = await paid_payment(harness)
    refund_id = reserve(harness, payment_id, None)  # the whole payment: voided at once
    assert (await refund(harness, payment_id, refund_id)).status == "processed"
    handle = harness.client.get_workflow_handle(f"refund-{refund_id}")
    started, upserts = await indexed(handle)
    assert started == {"PaymentId": payment_id, "RefundStatus": "initiated"}
    assert upserts == [{"RefundStatus": "processed"}]
    assert await current_details(handle) == "**processed**: done"


def test_the_dev_server_registers_every_attribute_with_its_type() -> None:
    flags = dev_server_flags()
    assert flags[::2] == ["--search-attribute"] * 9
    assert "AmountMinor=Int" in flags and "PaymentStatus=Keyword" in flags


# --- the operator's queries, on the dev server (the time-skipping server cannot list runs) ----
@pytest.fixture(scope="module")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """The dev server started as `make run` starts it: attributes registered by its flags."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_temporal_cli(), dev_server_extra_args=dev_server_flags()
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def on_dev_server(
    dev_server: WorkflowEnvironment, db: Database, executor: ThreadPoolExecutor, tmp_path: Path
) -> AsyncIterator[Harness]:
    async with worker_harness(dev_server.client, db, executor, tmp_path) as running:
        yield running


async def listed(client: Client, query: str, expected: int) -> list[str]:
    """The ids of the runs the query finds, once it finds ``expected`` of them (visibility is
    eventually consistent; bounded)."""
    for _ in range(100):
        found = [run.id async for run in client.list_workflows(query)]
        if len(found) >= expected:
            return sorted(found)
        await asyncio.sleep(0.1)
    return sorted(found)


async def test_failed_wallet_payments_of_a_user_today(on_dev_server: Harness) -> None:
    harness = on_dev_server
    user = f"user-{uuid.uuid4().hex[:8]}"
    wallet = replace(request(), user_id=user, payment_method="wallet")
    harness.gateway.decline_sequence = ["2000", None, "2000"]
    declined_wallet, paid_wallet, declined_card = (
        replace(wallet, payment_id=str(uuid.uuid4())),
        replace(wallet, payment_id=str(uuid.uuid4())),
        replace(wallet, payment_id=str(uuid.uuid4()), payment_method="credit_card"),
    )
    for req in (declined_wallet, paid_wallet, declined_card):
        await run(harness, req)
    today = datetime.now(UTC).date().isoformat()
    query = (
        'WorkflowType="PaymentWorkflow" AND PaymentStatus="failure" AND PaymentMethod="wallet"'
        f' AND UserId="{user}" AND StartTime >= "{today}T00:00:00Z"'
    )
    assert await listed(harness.client, query, 1) == [f"payment-{declined_wallet.payment_id}"]
    everything = await listed(harness.client, f'UserId="{user}"', 3)
    assert len(everything) == 3
    handle = harness.client.get_workflow_handle(f"payment-{declined_wallet.payment_id}")
    described = (await handle.describe()).typed_search_attributes
    assert described.get(AMOUNT_MINOR) == 4999 and described.get(PAYMENT_STATUS) == "failure"


async def test_refunds_waiting_for_settlement(on_dev_server: Harness) -> None:
    harness = on_dev_server
    payment_id = await paid_payment(harness)  # the sale never settles by itself here
    refund_id = reserve(harness, payment_id, 1000)
    request = RefundRequest(
        refund_id=refund_id, payment_id=payment_id, policy=PolicySettings().refund_policy()
    )
    handle = await harness.client.start_workflow(
        RefundWorkflow.run,
        request,
        id=f"refund-{refund_id}",
        task_queue=harness.task_queue,
        search_attributes=refund_attributes(request),
    )
    await wait_for_step(handle, "waiting_for_settlement")
    query = (
        'WorkflowType="RefundWorkflow" AND RefundStatus="initiated" AND ExecutionStatus="Running"'
        f' AND PaymentId="{payment_id}"'
    )
    assert await listed(harness.client, query, 1) == [f"refund-{refund_id}"]
    assert await current_details(handle) == "**initiated**: waiting for settlement"
    await handle.terminate("test over")
