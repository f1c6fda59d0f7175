"""The real stack for end-to-end tests, once per database backend.

Each stack is what `make run` starts — Temporal dev server (with its Web UI, state in a SQLite
file as under `make run`), the Tansu broker, the Braintree-compatible sandbox, worker,
consumer and API as separate processes — on free ports, with its output in a log file under
pytest's temporary directory, and the development keys `make run` makes (merchant
dev-merchant): the `api` client uses the checkout key, `admin_api` the admin key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from devtools.events import EventReader
from devtools.postgres import create_postgres_database, drop_postgres_database
from devtools.processes import ProcessGroup, ProcessSpec
from devtools.sandbox.settings import SandboxSettings
from devtools.stack import (
    StackEndpoints,
    free_port,
    free_stack_settings,
    http_ready,
    python_module_argv,
    stack_env,
    start_stack,
)
from payments.config import (
    ApiSettings,
    DatabaseSettings,
    OrderServiceSettings,
    Settings,
)
from tests.conftest import require_postgres
from tests.support import processes
from tests.support.order_service import OrderServiceAdmin, start_local_order_service


@dataclass
class Stack:
    settings: Settings
    endpoints: StackEndpoints
    group: ProcessGroup
    log_path: Path

    @property
    def kafka_bootstrap(self) -> str:
        return self.endpoints.kafka_bootstrap

    def topic(self, name: str) -> str:
        return self.settings.kafka.topic(name)

    async def workflow_status(self, workflow_id: str) -> str:
        client = await Client.connect(self.endpoints.temporal_address)
        description = await client.get_workflow_handle(workflow_id).describe()
        assert description.status is not None
        return description.status.name

    async def ui_workflows(self, query: str) -> list[dict[str, Any]]:
        """Ask the Temporal Web UI's own HTTP API, as the browser page does."""
        assert self.endpoints.temporal_ui_url is not None
        async with httpx.AsyncClient(
            base_url=self.endpoints.temporal_ui_url, trust_env=False
        ) as ui:
            for _ in range(50):  # visibility is eventually consistent
                response = await ui.get(
                    f"/api/v1/namespaces/{self.settings.temporal.namespace}/workflows",
                    params={"query": query},
                )
                response.raise_for_status()
                found: list[dict[str, Any]] = response.json().get("executions") or []
                if found:
                    return found
                await asyncio.sleep(0.2)
        return []

    @property
    def keys(self) -> Mapping[str, str]:
        return self.endpoints.api_keys

    def api_client(self, role: str | None = "checkout", **options: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return httpx.AsyncClient(
            base_url=self.endpoints.api_url,
            timeout=options.pop("timeout", 30),
            trust_env=False,
            headers=headers,
            **options,
        )

    async def sandbox_transactions(self, **match: str) -> list[dict[str, Any]]:
        """What the gateway sandbox holds. ``order_id`` matches the service's order id: the
        gateway knows it as "{merchant_id}:{order_id}"."""
        assert self.endpoints.sandbox_url is not None
        async with httpx.AsyncClient(base_url=self.endpoints.sandbox_url, trust_env=False) as sb:
            response = await sb.get("/_sandbox/transactions")
            response.raise_for_status()
            body = response.json()
        items: list[dict[str, Any]] = body["transactions"] if isinstance(body, dict) else body
        order_id = match.pop("order_id", None)
        if order_id is not None:
            items = [t for t in items if _same_order(t.get("order_id"), order_id)]
        return [t for t in items if all(t.get(k) == v for k, v in match.items())]

    def stop_worker(self) -> None:
        self.group.stop("worker")

    def start_worker(self) -> None:
        processes.restart(self.group, "worker")


def _same_order(gateway_order_id: str | None, order_id: str) -> bool:
    return gateway_order_id is not None and gateway_order_id.split(":", 1)[-1] == order_id


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp(f"stack-{request.param}")
    dropper = None
    if request.param == "sqlite":
        database_url = f"sqlite:///{data_dir / 'payments.db'}"
    else:
        require_postgres()
        database_url, name = create_postgres_database("payments_e2e")
        dropper = name
    settings = free_stack_settings(data_dir, database=DatabaseSettings(url=database_url))
    settings = settings.model_copy(
        update={
            "policy": settings.policy.model_copy(
                update={"refund_settlement_check_schedule_seconds": [1.0]}
            ),
            # The tests poll hundreds of payments at once with one key: a rate limit for
            # them, not a checkout's (tests/api checks the limits themselves).
            "api": settings.api.model_copy(update={"rate_limit": "2000/second"}),
            # Short, so that a delayed answer (injected fault) becomes a timeout quickly.
            "gateway": settings.gateway.model_copy(update={"timeout_seconds": 2}),
            # The worker's Prometheus endpoint, scraped by the operators' tests.
            "temporal": settings.temporal.model_copy(
                update={"metrics_address": f"127.0.0.1:{free_port()}"}
            ),
            "kafka": settings.kafka.model_copy(
                update={"consumer_metrics_address": f"127.0.0.1:{free_port()}"}
            ),
        }
    )
    log_path = data_dir / "stack.log"
    try:
        with ProcessGroup(log_path) as group:
            try:
                # Temporal keeps its state in a file, as under `make run`: what it stores is
                # inspected (ciphertext only, no card data).
                endpoints = start_stack(
                    group,
                    settings,
                    sandbox=SandboxSettings(
                        settle_after_seconds=2.0, bank_settle_after_seconds=6.0
                    ),
                )
            except Exception:
                print(log_path.read_text()[-5000:])
                raise
            yield Stack(settings, endpoints, group, log_path)
    finally:
        if dropper is not None:
            drop_postgres_database(dropper)


@pytest.fixture(scope="session")
async def events(stack: Stack) -> AsyncIterator[EventReader]:
    reader = EventReader(stack.kafka_bootstrap, stack.settings.kafka.topic_prefix)
    await reader.start()
    yield reader
    await reader.stop()


@pytest.fixture(scope="session")
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The checkout's client: the development checkout key (merchant dev-merchant)."""
    async with stack.api_client("checkout") as client:
        yield client


@pytest.fixture(scope="session")
async def admin_api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The platform operator's client: the development admin key."""
    async with stack.api_client("admin") as client:
        yield client


@dataclass
class OrderStack:
    """A second API and worker of the service, configured with ORDER_SERVICE_URL, on the same
    Temporal, Kafka and gateway sandbox (own task queue and database)."""

    api: httpx.AsyncClient
    admin: OrderServiceAdmin


def start_beside(group: ProcessGroup, settings: Settings, data_dir: Path) -> dict[str, str]:
    """A worker and an API of their own beside the shared stack (its Temporal, Kafka and
    sandbox), on ``settings``' database (migrated here) and task queue; their development
    API keys ({"checkout": ..., "admin": ...})."""
    env = stack_env(settings)
    group.run(ProcessSpec("migrate", python_module_argv("payments.db.migrate"), env=env))
    keys_file = data_dir / "dev-api-keys.json"
    group.run(
        ProcessSpec(
            "keys", python_module_argv("api.keys", "dev", "--file", str(keys_file)), env=env
        )
    )
    keys: dict[str, str] = json.loads(keys_file.read_text())
    group.start(ProcessSpec("worker", python_module_argv("workers.payment_worker"), env=env))
    api_url = f"http://127.0.0.1:{settings.api.port}"
    group.start(
        ProcessSpec(
            "api", python_module_argv("api"), env=env, ready=http_ready(f"{api_url}/healthz")
        )
    )
    return keys


@pytest.fixture(scope="session")
async def order_stack(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[OrderStack]:
    if not stack.settings.database.url.startswith("sqlite"):
        pytest.skip("the Order Service integration runs once, on the SQLite stack")
    data_dir = tmp_path_factory.mktemp("order-stack")
    server = start_local_order_service()
    settings = stack.settings.model_copy(
        update={
            "database": DatabaseSettings(url=f"sqlite:///{data_dir / 'payments.db'}"),
            # Its own metrics port: two workers cannot serve on one.
            "temporal": stack.settings.temporal.model_copy(
                update={"task_queue": "orders-stack", "metrics_address": f"127.0.0.1:{free_port()}"}
            ),
            "api": ApiSettings(host="127.0.0.1", port=free_port()),
            "orders": OrderServiceSettings(url=server.url),
        }
    )
    api_url = f"http://127.0.0.1:{settings.api.port}"
    try:
        with ProcessGroup(data_dir / "stack.log") as group:
            checkout_key = start_beside(group, settings, data_dir)["checkout"]
            async with (
                httpx.AsyncClient(
                    base_url=api_url,
                    timeout=30,
                    trust_env=False,
                    headers={"Authorization": f"Bearer {checkout_key}"},
                ) as api,
                httpx.AsyncClient(base_url=server.url, timeout=30, trust_env=False) as admin,
            ):
                yield OrderStack(api, OrderServiceAdmin(admin))
    finally:
        server.stop()
