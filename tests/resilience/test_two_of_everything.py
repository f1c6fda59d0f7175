"""Two of everything: two APIs, two workers and two consumers against one Temporal server, one
broker and PostgreSQL, as a deployment runs them (docker-compose.yml).

Proves, with no coordination of the service's own (Temporal's task queue and Kafka's consumer
group do it): 200 payments, some through each API and some through the initiation topic, and
then their refunds, are spread over both workers (their histories name both identities); one
worker stopped with SIGTERM midway loses nothing; every payment is charged exactly once and
refunded once; the two consumers split the topic's partitions and each starts payments.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from devtools.postgres import create_postgres_database, drop_postgres_database
from payments.config import DatabaseSettings
from payments.events.topics import PAYMENT_INITIATION
from tests.conftest import require_postgres
from tests.resilience.support import (
    ResilienceStack,
    initiate,
    payment_body,
    running_stack,
    send_initiation,
    wait_all_terminal,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]

OVER_HTTP = 160  # half through each API
OVER_KAFKA = 40
CONCURRENT = 16
HANDLED = re.compile(r"^\S+ (consumer-\d)\s*\|.*payment_initiation message handled")
ASSIGNED = re.compile(r"^\S+ (consumer-\d)\s*\|.*partitions assigned\s.*partitions=(.*)$")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResilienceStack]:
    require_postgres()
    url, name = create_postgres_database("payments_two")
    try:
        with running_stack(
            tmp_path_factory.mktemp("two-of-everything"),
            database=DatabaseSettings(url=url),
            processes={"workers": 2, "apis": 2, "consumers": 2},
        ) as running:
            yield running
    finally:
        drop_postgres_database(name)


def client(stack: ResilienceStack, url: str) -> httpx.AsyncClient:
    key = stack.endpoints.api_keys["checkout"]
    return httpx.AsyncClient(
        base_url=url, timeout=30, trust_env=False, headers={"Authorization": f"Bearer {key}"}
    )


def log_lines(stack: ResilienceStack) -> list[str]:
    return stack.log_path.read_text(encoding="utf-8", errors="replace").splitlines()


def initiation_partitions(stack: ResilienceStack) -> dict[str, set[str]]:
    """Each consumer's latest assignment of the initiation topic's partitions."""
    topic = stack.settings.kafka.topic(PAYMENT_INITIATION)
    latest: dict[str, set[str]] = {}
    for line in log_lines(stack):
        if found := ASSIGNED.search(line):
            names = re.findall(r"'([^']+)'", found.group(2))
            latest[found.group(1)] = {n for n in names if n.startswith(f"{topic}[")}
    return latest


async def both_consumers_read(stack: ResilienceStack, seconds: float = 60) -> dict[str, set[str]]:
    deadline = time.monotonic() + seconds
    while True:
        assigned = initiation_partitions(stack)
        if len(assigned) == 2 and all(assigned.values()):
            return assigned
        assert time.monotonic() < deadline, f"consumers never split the partitions: {assigned}"
        await asyncio.sleep(0.5)


async def payment_of_order(
    api: httpx.AsyncClient, order_id: str, seconds: float = 120
) -> dict[str, Any]:
    """The payment a Kafka message started, once final (GET /payments?order_id=)."""
    deadline = time.monotonic() + seconds
    while True:
        listed = (await api.get("/payments", params={"order_id": order_id})).json()["items"]
        if listed and listed[0]["payment_status"] in ("success", "failure"):
            assert len(listed) == 1, listed
            found: dict[str, Any] = listed[0]
            return found
        assert time.monotonic() < deadline, f"no final payment for {order_id}: {listed}"
        await asyncio.sleep(0.5)


async def worker_identities(temporal: Client, workflow_ids: list[str]) -> Counter[str]:
    """How many of these runs each worker identity completed a workflow task of."""
    seen: Counter[str] = Counter()

    async def of(workflow_id: str) -> set[str]:
        history = await temporal.get_workflow_handle(workflow_id).fetch_history()
        return {
            e.workflow_task_completed_event_attributes.identity
            for e in history.events
            if e.HasField("workflow_task_completed_event_attributes")
        }

    for identities in await asyncio.gather(*(of(w) for w in workflow_ids)):
        seen.update(identities)
    return seen


async def test_two_apis_two_workers_two_consumers_share_the_work_and_lose_nothing(
    stack: ResilienceStack,
) -> None:
    first, second = stack.endpoints.api_urls
    partitions = await both_consumers_read(stack)
    assert not set.intersection(*partitions.values()), partitions  # split, not shared

    async with client(stack, first) as api_1, client(stack, second) as api_2:
        apis = (api_1, api_2)
        gate = asyncio.Semaphore(CONCURRENT)
        accepted = 0
        halfway = asyncio.Event()

        async def pay(index: int) -> str:
            nonlocal accepted
            async with gate:
                payment = await initiate(apis[index % 2], payment_body())
            accepted += 1
            if accepted == OVER_HTTP // 2:
                halfway.set()
            return str(payment["payment_id"])

        async def stop_a_worker_midway() -> int:
            await halfway.wait()
            return await stack.terminate("worker-1")  # SIGTERM: drains, then exits

        orders = [f"order-{uuid.uuid4().hex[:12]}" for _ in range(OVER_KAFKA)]
        for order_id in orders:
            await send_initiation(stack, order_id)
        stopping = asyncio.create_task(stop_a_worker_midway())
        http_ids = await asyncio.gather(*(pay(i) for i in range(OVER_HTTP)))
        exit_code = await stopping
        assert exit_code == 0  # a clean stop, not a kill
        paid = await wait_all_terminal(api_2, http_ids, seconds=180)
        from_kafka = await asyncio.gather(*(payment_of_order(api_1, o) for o in orders))
        payments = [*paid.values(), *from_kafka]
        assert len(payments) == OVER_HTTP + OVER_KAFKA
        assert {p["payment_status"] for p in payments} == {"success"}

        # The stopped worker comes back; the refunds go through both again.
        await stack.restart("worker-1")
        refunds = []
        for index, payment in enumerate(payments):
            response = await apis[index % 2].post(
                "/refund", json={"payment_id": payment["payment_id"], "reason": "returned"}
            )
            assert response.status_code == 202, response.text
            refunds.append(response.json()["refund_id"])
        deadline = time.monotonic() + 180
        for refund_id in refunds:
            while True:
                refund = (await api_1.get(f"/refund/{refund_id}")).json()
                if refund["refund_status"] != "initiated":
                    break
                assert time.monotonic() < deadline, f"refund {refund_id} not final"
                await asyncio.sleep(0.25)
            assert refund["refund_status"] == "processed", refund

    # Charged exactly once; given back exactly once (voided before settlement, or one credit).
    assert stack.endpoints.sandbox_url is not None
    async with httpx.AsyncClient(base_url=stack.endpoints.sandbox_url, trust_env=False) as sandbox:
        held = (await sandbox.get("/_sandbox/transactions", timeout=30)).json()
    sales = [t for t in held if t["type"] == "sale"]
    per_order = Counter(t["order_id"].split(":", 1)[-1] for t in sales)
    assert sorted(per_order) == sorted(p["order_id"] for p in payments)
    assert set(per_order.values()) == {1}
    credits = Counter(t["refunded_transaction_id"] for t in held if t["refunded_transaction_id"])
    for sale in sales:
        given_back = (sale["status"] == "voided") + credits[sale["id"]]
        assert given_back == 1, sale

    # Both workers ran payments and refunds; both consumers started payments.
    temporal = await stack.temporal()
    by_payment = await worker_identities(temporal, [f"payment-{p['payment_id']}" for p in payments])
    by_refund = await worker_identities(temporal, [f"refund-{r}" for r in refunds])
    assert len(by_payment) >= 2, by_payment
    assert len(by_refund) >= 2, by_refund
    handled = Counter(m.group(1) for line in log_lines(stack) if (m := HANDLED.search(line)))
    assert set(handled) == {"consumer-1", "consumer-2"}, handled
    assert sum(handled.values()) >= OVER_KAFKA
    stack.assert_no_crash()


def test_the_stack_names_each_process(stack: ResilienceStack) -> None:
    assert len(stack.endpoints.api_urls) == 2
    started = {line.split("|", 1)[0].split()[-1] for line in log_lines(stack) if "|" in line}
    assert {"api-1", "api-2", "worker-1", "worker-2", "consumer-1", "consumer-2"} <= started
