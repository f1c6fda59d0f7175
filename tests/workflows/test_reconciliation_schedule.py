"""The reconciliation schedule the worker keeps: created when missing, brought up to date when
its settings change, and never unpaused: an operator's pause holds across worker restarts.

On the real dev server (the time-skipping test server has no schedules), with the encrypting
data converter, as the worker connects."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleDescription
from temporalio.testing import WorkflowEnvironment

from devtools.stack import find_temporal_cli
from payments.config import PolicySettings
from payments.contracts import ReconciliationRequest
from payments.keyring import KeyRing, new_key_entry
from workflows.client import PaymentWorkflows, TemporalConnection, reconciliation_schedule_id
from workflows.codec import data_converter
from workflows.search_attributes import SEARCH_ATTRIBUTES


@pytest.fixture(scope="module")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_temporal_cli(),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=data_converter(KeyRing.parse(new_key_entry("test-1"))),
    )
    yield env
    await env.shutdown()


async def start_worker(client: Client, task_queue: str, **policy: Any) -> None:
    """What a worker does to the schedule when it starts with these settings."""
    await PaymentWorkflows(
        TemporalConnection.of(client), task_queue, PolicySettings(**policy)
    ).ensure_reconciliation_schedule()


async def describe(client: Client, task_queue: str) -> ScheduleDescription:
    return await client.get_schedule_handle(reconciliation_schedule_id(task_queue)).describe()


def every(description: ScheduleDescription) -> list[timedelta]:
    return [interval.every for interval in description.schedule.spec.intervals]


async def started_with(client: Client, description: ScheduleDescription) -> ReconciliationRequest:
    action = description.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    [request] = await client.data_converter.decode(list(action.args), [ReconciliationRequest])
    assert isinstance(request, ReconciliationRequest)
    return request


async def test_worker_start_keeps_an_operators_pause(dev_server: WorkflowEnvironment) -> None:
    client = dev_server.client
    task_queue = f"payments-{uuid.uuid4()}"

    # The first worker creates it.
    await start_worker(client, task_queue, reconciliation_interval_seconds=300)
    created = await describe(client, task_queue)
    assert every(created) == [timedelta(minutes=5)]
    assert not created.schedule.state.paused

    # An operator pauses it; a worker (re)starts with the same settings: still paused.
    handle = client.get_schedule_handle(reconciliation_schedule_id(task_queue))
    await handle.pause(note="gateway maintenance until 18:00")
    await start_worker(client, task_queue, reconciliation_interval_seconds=300)
    restarted = await describe(client, task_queue)
    assert restarted.schedule.state.paused
    assert restarted.schedule.state.note == "gateway maintenance until 18:00"

    # A worker with a new interval and a new minimum age: both taken, the pause kept.
    await start_worker(
        client,
        task_queue,
        reconciliation_interval_seconds=600,
        reconciliation_min_age_seconds=900,
    )
    updated = await describe(client, task_queue)
    assert every(updated) == [timedelta(minutes=10)]
    assert (await started_with(client, updated)).min_age_seconds == 900
    assert updated.schedule.state.paused
    assert updated.schedule.state.note == "gateway maintenance until 18:00"

    await handle.delete()


async def test_every_run_now_starts_a_pass(dev_server: WorkflowEnvironment) -> None:
    """POST /reconciliation/run in the same second as another, or as the schedule's tick:
    each starts a pass of its own (a schedule trigger names its run by the second, so the
    second one was dropped while the API answered 202)."""
    client = dev_server.client
    task_queue = f"payments-{uuid.uuid4()}"
    await start_worker(client, task_queue, reconciliation_interval_seconds=300)
    workflows = PaymentWorkflows(TemporalConnection.of(client), task_queue, PolicySettings())
    await workflows.run_reconciliation_now()
    await workflows.run_reconciliation_now()
    query = f"WorkflowType = 'ReconciliationWorkflow' AND TaskQueue = '{task_queue}'"
    for _ in range(100):  # visibility follows within moments
        started = [w.id async for w in client.list_workflows(query)]
        if len(started) >= 2:
            break
        await asyncio.sleep(0.1)
    assert len(set(started)) == 2, started
