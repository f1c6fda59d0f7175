"""Workflow tests: the real workflows and activity classes on Temporal's time-skipping test
server, with the gateway and the publisher swapped for fakes and a real database. Every test
runs on SQLite and on PostgreSQL (skipped when unreachable, unless TEST_REQUIRE_POSTGRES=1)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devtools.stack import high_volume_fraud_settings
from payments.config import (
    DatabaseSettings,
    FraudSettings,
    PolicySettings,
    Settings,
    TemporalSettings,
)
from payments.contracts import RemovePaymentMethodRequest, VaultRequest, VaultResult
from payments.db.database import Database
from payments.db.engine import create_db_engine
from payments.orders.client import Order, PaymentResult
from tests.conftest import BACKENDS, database_copy, migrated_database
from tests.fakes import FakeGateway, RecordingPublisher
from workers.payment_worker import WORKFLOW_RUNNER, WORKFLOWS, build_activities
from workflows.namespace_setup import register_search_attributes
from workflows.payment_methods import RemovePaymentMethodWorkflow, VaultPaymentMethodWorkflow


def test_server_path() -> str:
    found = shutil.which("temporal-test-server") or str(
        Path(sys.executable).parent / "temporal-test-server"
    )
    if not Path(found).exists():
        pytest.fail("temporal-test-server not installed: run `make install`")
    return found


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path()
    )
    # As `payments search-attributes` does on a cluster; runs set them at start.
    await register_search_attributes(env.client, env.client.namespace)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database on each backend that no test touches: each test works on a copy
    (``db``)."""
    with migrated_database(request.param, tmp_path_factory, "workflows") as url:
        yield url


@pytest.fixture
def db(migrated_template: str, tmp_path: Path) -> Iterator[Database]:
    """The test's own database. Not shared with any other test: reconciliation takes up
    every open payment and refund it finds, and would start workflows for other tests' rows
    on a task queue no worker serves after them (which stops the test server from skipping
    time for every test after it); and what a test finds must not depend on which ran
    before it."""
    with database_copy(migrated_template, tmp_path) as url:
        engine = create_db_engine(DatabaseSettings(url=url))
        try:
            yield Database(engine)
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        yield pool


@dataclass
class Harness:
    client: Client
    task_queue: str
    gateway: FakeGateway
    publisher: RecordingPublisher
    db: Database
    orders: RecordingOrderService


@dataclass
class RecordingOrderService:
    updates: list[tuple[str, str, str, str]] = field(default_factory=list)

    async def get_order(self, order_id: str) -> Order | None:
        return None

    async def record_payment(
        self, order_id: str, payment_id: str, payment_status: PaymentResult, event_id: str
    ) -> None:
        self.updates.append((order_id, payment_id, payment_status, event_id))


@asynccontextmanager
async def worker_harness(
    client: Client,
    db: Database,
    executor: ThreadPoolExecutor,
    files: Path,
    *,
    fraud: FraudSettings | None = None,
) -> AsyncIterator[Harness]:
    """A worker on a task queue of its own with the worker's own wiring (build_activities),
    the gateway, the publisher and the Order Service swapped for fakes; its key files go
    into the directory ``files``. Its fraud rules are ``fraud``; by default those of the test
    stacks, which let a test's one user pay as often as it likes."""
    gateway = FakeGateway()
    publisher = RecordingPublisher()
    orders = RecordingOrderService()
    task_queue = f"tq-{uuid.uuid4()}"
    settings = Settings(
        # The token key ring is generated here (environment local); the legacy Fernet key
        # file points here too, so that a developer's .data/ never takes part.
        policy=PolicySettings(
            dev_token_keys_file=files / "token-keys",
            dev_token_key_file=files / "token.key",
            fraud=fraud or high_volume_fraud_settings(),
        ),
        temporal=TemporalSettings(task_queue=task_queue),
    )
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
        activities=build_activities(
            client, settings, publisher=publisher, gateway=gateway, db=db, orders=orders
        ),
        activity_executor=executor,
    ):
        yield Harness(client, task_queue, gateway, publisher, db, orders)


@pytest.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment,
    db: Database,
    executor: ThreadPoolExecutor,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    async with worker_harness(time_skipping_env.client, db, executor, tmp_path) as running:
        yield running


async def wait_for_step(handle: WorkflowHandle[Any, Any], step: str, seconds: float = 10) -> None:
    """Until the workflow's progress query reports ``step`` (bounded)."""
    for _ in range(int(seconds / 0.05)):
        if (await handle.query("progress"))["step"] == step:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"workflow never reached step {step}")


async def run_vault(harness: Harness, method_id: str, nonce: str) -> VaultResult:
    """The vault workflow of user-1's payment method ``method_id``, run to its end."""
    return await harness.client.execute_workflow(
        VaultPaymentMethodWorkflow.run,
        VaultRequest(method_id, "user-1", nonce),
        id=f"vault-{method_id}",
        task_queue=harness.task_queue,
    )


async def run_removal(harness: Harness, method_id: str) -> None:
    """The workflow that removes the saved payment method, run to its end."""
    await harness.client.execute_workflow(
        RemovePaymentMethodWorkflow.run,
        RemovePaymentMethodRequest(method_id),
        id=f"remove-{method_id}",
        task_queue=harness.task_queue,
    )
