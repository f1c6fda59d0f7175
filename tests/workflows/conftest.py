"""Workflow tests: the real workflows and activity classes on Temporal's time-skipping test
server, with the gateway and the publisher swapped for fakes and a real (SQLite) database."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.events import EventActivities
from activities.fraud import FraudActivities
from activities.gateway import GatewayActivities
from activities.ledger import LedgerActivities
from payments.config import DatabaseSettings, PolicySettings
from payments.db.engine import create_db_engine
from payments.db.migrate import upgrade
from payments.db.repository import PaymentRepository
from tests.fakes import FakeGateway, RecordingPublisher
from workflows.payment import PaymentWorkflow
from workflows.refund import RefundWorkflow


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
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> PaymentRepository:
    url = f"sqlite:///{tmp_path_factory.mktemp('wf') / 'payments.db'}"
    upgrade(url)
    return PaymentRepository(create_db_engine(DatabaseSettings(url=url)))


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
    repository: PaymentRepository


@pytest.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment,
    repository: PaymentRepository,
    executor: ThreadPoolExecutor,
) -> AsyncIterator[Harness]:
    gateway = FakeGateway()
    publisher = RecordingPublisher()
    ledger = LedgerActivities(repository)
    fraud = FraudActivities(repository, PolicySettings())
    gateway_activities = GatewayActivities(gateway)
    events = EventActivities(publisher)
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=[PaymentWorkflow, RefundWorkflow],
        activities=[
            ledger.record_payment_pending,
            ledger.record_payment_outcome,
            ledger.refund_snapshot,
            ledger.plan_refund,
            ledger.record_refund_outcome,
            fraud.check_payment,
            gateway_activities.charge,
            gateway_activities.refund,
            events.publish_payment_status,
            events.publish_refund_status,
        ],
        activity_executor=executor,
    ):
        yield Harness(time_skipping_env.client, task_queue, gateway, publisher, repository)
