"""What the resilience tests share: a whole stack on free ports, HTTP helpers that tolerate a
dependency being down, and a look into Temporal's view of a workflow.

Every stack is what ``make run`` starts (Temporal dev server, Tansu broker, gateway sandbox,
worker, consumer, API: real processes under :class:`~devtools.processes.ProcessGroup`), here
headless and with Temporal in memory, its output in a log file under pytest's temporary
directory. The tail of that log is attached to the report of a failing test (see conftest).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from devtools.processes import ProcessGroup
from devtools.sandbox.settings import SandboxSettings
from devtools.stack import StackEndpoints, free_stack_settings, start_stack
from payments.config import Settings
from payments.events.topics import PAYMENT_INITIATION
from tests.support import kafka, processes
from workflows.connection import connect_temporal

TERMINAL_PAYMENT_STATUSES = frozenset({"success", "failure"})
LOG_TAIL_CHARS = 12_000

# Stacks running now: the conftest attaches their log tails to a failing test's report.
ACTIVE_STACKS: list[ResilienceStack] = []


@dataclass
class ResilienceStack:
    settings: Settings
    endpoints: StackEndpoints
    group: ProcessGroup
    log_path: Path

    @property
    def api_url(self) -> str:
        return self.endpoints.api_url

    def api_client(self, timeout: float = 30.0, role: str = "checkout") -> httpx.AsyncClient:
        """A client with the stack's development key of ``role`` (merchant dev-merchant)."""
        return httpx.AsyncClient(
            base_url=self.api_url,
            timeout=timeout,
            trust_env=False,
            headers={"Authorization": f"Bearer {self.endpoints.api_keys[role]}"},
        )

    async def sales(self, order_id: str) -> list[dict[str, Any]]:
        """What the gateway sandbox holds for the service's ``order_id`` (the gateway knows it
        as "{merchant_id}:{order_id}"; GET /_sandbox/transactions)."""
        assert self.endpoints.sandbox_url is not None
        async with httpx.AsyncClient(
            base_url=self.endpoints.sandbox_url, timeout=10, trust_env=False
        ) as sandbox:
            response = await sandbox.get("/_sandbox/transactions")
        response.raise_for_status()
        return [
            t for t in response.json() if (t.get("order_id") or "").split(":", 1)[-1] == order_id
        ]

    async def sale_count(self) -> int:
        """How many sales the gateway sandbox holds, all orders together."""
        assert self.endpoints.sandbox_url is not None
        async with httpx.AsyncClient(
            base_url=self.endpoints.sandbox_url, timeout=10, trust_env=False
        ) as sandbox:
            response = await sandbox.get("/_sandbox/transactions")
        response.raise_for_status()
        return sum(1 for t in response.json() if t["type"] == "sale")

    async def add_sandbox_fault(self, **fault: Any) -> None:
        """Arm a fault in the sandbox (POST /_sandbox/faults), e.g. a delayed sale."""
        assert self.endpoints.sandbox_url is not None
        async with httpx.AsyncClient(
            base_url=self.endpoints.sandbox_url, timeout=10, trust_env=False
        ) as sandbox:
            response = await sandbox.post("/_sandbox/faults", json=fault)
        response.raise_for_status()

    async def temporal(self) -> Client:
        return await connect_temporal(self.settings)  # the stack's payload key ring

    # ProcessGroup is synchronous: keep the event loop (and the test's clients) running.
    async def kill(self, name: str) -> None:
        await asyncio.to_thread(processes.kill, self.group, name)

    async def terminate(self, name: str) -> int:
        return await asyncio.to_thread(processes.terminate, self.group, name)

    async def restart(self, name: str) -> None:
        await asyncio.to_thread(processes.restart, self.group, name)

    def frozen(self, *names: str) -> contextlib.AbstractContextManager[None]:
        return processes.frozen(self.group, *names)

    def assert_no_crash(self) -> None:
        """No child exited on its own (the ones the test killed or stopped do not count)."""
        crashed = self.group.crashed()
        assert crashed is None, (
            f"{crashed.spec.name} exited (its output: {self.log_path}); its last lines:\n"
            + self.child_tail(crashed.spec.name)
        )

    def child_tail(self, name: str, lines: int = 40) -> str:
        """The last lines of one child's output: a crash's traceback, which the whole log's
        tail loses among the other processes' lines."""
        prefix = f" {name} |"
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(log {self.log_path} unreadable: {exc})"
        own = [line for line in text.splitlines() if prefix in line[:40]]
        return "\n".join(own[-lines:])

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError as exc:
            return f"(log {self.log_path} unreadable: {exc})"


@contextlib.contextmanager
def running_stack(
    data_dir: Path,
    *,
    sandbox: SandboxSettings | None = None,
    processes: Mapping[str, int] | None = None,
    **overrides: object,
) -> Iterator[ResilienceStack]:
    """The whole stack for :func:`free_stack_settings` (``overrides`` replace whole groups,
    ``sandbox`` says how the gateway sandbox behaves, ``processes`` how many ``workers``,
    ``apis`` and ``consumers`` run), stopped on exit. Synchronous: use it from a sync
    fixture, never inside a running loop."""
    settings = free_stack_settings(data_dir)
    # The tests poll every payment in flight at once with one key: no checkout's rate limit.
    settings.api.rate_limit = "2000/second"
    if overrides:
        settings = settings.model_copy(update=overrides)
    log_path = data_dir / "stack.log"
    with ProcessGroup(log_path) as group:
        try:
            endpoints = start_stack(
                group,
                settings,
                temporal_ui=False,
                temporal_persistent=False,
                sandbox=sandbox,
                **(processes or {}),
            )
        except Exception:
            print(f"--- stack log ({log_path}) ---\n{log_path.read_text()[-LOG_TAIL_CHARS:]}")
            raise
        stack = ResilienceStack(settings, endpoints, group, log_path)
        ACTIVE_STACKS.append(stack)
        try:
            yield stack
        finally:
            ACTIVE_STACKS.remove(stack)


# --- payments over HTTP ------------------------------------------------------------------------
def payment_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": f"order-{uuid.uuid4().hex[:12]}",
        "user_id": "user-resilience",
        "amount": "49.99",
        "currency": "USD",
        "payment_method": "credit_card",
        "payment_token": "fake-valid-nonce",
    }
    body.update(overrides)
    return body


async def send_initiation(
    stack: ResilienceStack,
    order_id: str | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> dict[str, Any]:
    """A payment asked for on the payment_initiation topic (keyed by its order, with an
    idempotency key, for the development merchant); the message's body."""
    body = {
        **payment_body(**({"order_id": order_id} if order_id else {})),
        "idempotency_key": f"msg-{uuid.uuid4()}",
        "merchant_id": "dev-merchant",
    }
    await kafka.send(
        stack.settings.kafka,
        stack.settings.kafka.topic(PAYMENT_INITIATION),
        json.dumps(body).encode(),
        key=body["order_id"].encode(),
        headers=headers,
    )
    return body


async def initiate(
    api: httpx.AsyncClient, body: dict[str, Any], key: str | None = None
) -> dict[str, Any]:
    """POST /initiate-payment; asserts 202 and returns the payment."""
    headers = {"Idempotency-Key": key} if key is not None else {}
    response = await api.post("/initiate-payment", json=body, headers=headers)
    assert response.status_code == 202, response.text
    payment: dict[str, Any] = response.json()
    return payment


async def get_payment(api: httpx.AsyncClient, payment_id: str) -> dict[str, Any]:
    response = await api.get(f"/payment/{payment_id}")
    assert response.status_code == 200, response.text
    payment: dict[str, Any] = response.json()
    return payment


async def wait_terminal(
    api: httpx.AsyncClient, payment_id: str, *, seconds: float, interval: float = 0.25
) -> dict[str, Any]:
    """Poll GET /payment/{id} until success or failure. Answers other than 200 (a 503 while a
    dependency recovers) and refused connections are retried until the deadline."""
    deadline = time.monotonic() + seconds
    last: str = "no answer yet"
    while True:
        try:
            response = await api.get(f"/payment/{payment_id}")
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                if body["payment_status"] in TERMINAL_PAYMENT_STATUSES:
                    return body
                last = f"payment_status {body['payment_status']}"
                if fraud := body.get("fraud"):  # a payment held for review waits a day
                    rules = ", ".join(reason["rule"] for reason in fraud["reasons"])
                    last += f", fraud {fraud['decision']} ({rules or 'no rule'})"
            else:
                last = f"HTTP {response.status_code}: {response.text[:200]}"
        if time.monotonic() > deadline:
            raise AssertionError(f"payment {payment_id} not terminal after {seconds:g} s: {last}")
        await asyncio.sleep(interval)


async def wait_all_terminal(
    api: httpx.AsyncClient, payment_ids: Iterable[str], *, seconds: float
) -> dict[str, dict[str, Any]]:
    ids = list(payment_ids)
    done = await asyncio.gather(*(wait_terminal(api, pid, seconds=seconds) for pid in ids))
    return dict(zip(ids, done, strict=True))


# --- Temporal's view -----------------------------------------------------------------------------
async def activity_attempts(client: Client, workflow_id: str) -> dict[str, int]:
    """The highest attempt each activity type of a workflow was started with (from its
    history): 2 or more means an attempt failed or timed out and Temporal ran it again."""
    scheduled: dict[int, str] = {}
    attempts: dict[str, int] = {}
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            attributes = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attributes.activity_type.name
        elif event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            name = scheduled[started.scheduled_event_id]
            attempts[name] = max(attempts.get(name, 0), started.attempt)
    return attempts


async def retried_completions(
    client: Client, workflow_id: str, activity_type: str
) -> list[datetime]:
    """When the server recorded the completion of each ``activity_type`` activity of a
    workflow that needed more than one attempt (Temporal writes a retried activity's started
    event, with its attempt number, only when the attempt ends)."""
    scheduled: dict[int, str] = {}
    attempts: dict[int, int] = {}
    completed: list[datetime] = []
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            attributes = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attributes.activity_type.name
        elif event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            attempts[started.scheduled_event_id] = started.attempt
        elif event.HasField("activity_task_completed_event_attributes"):
            done = event.activity_task_completed_event_attributes
            if (
                scheduled[done.scheduled_event_id] == activity_type
                and attempts.get(done.scheduled_event_id, 1) > 1
            ):
                completed.append(event.event_time.ToDatetime(tzinfo=UTC))
    return completed


async def workflow_step(client: Client, workflow_id: str) -> str:
    """The step a PaymentWorkflow is at (its ``progress`` query: fraud_check, charging...)."""
    progress = await client.get_workflow_handle(workflow_id).query("progress")
    assert isinstance(progress, dict)
    return str(progress["step"])


async def wait_step(client: Client, workflow_id: str, step: str, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (current := await workflow_step(client, workflow_id)) != step:
        if time.monotonic() > deadline:
            raise AssertionError(f"{workflow_id} still at {current}, not {step}")
        await asyncio.sleep(0.05)


async def workflow_status(client: Client, workflow_id: str) -> str:
    description = await client.get_workflow_handle(workflow_id).describe()
    assert description.status is not None
    return description.status.name
