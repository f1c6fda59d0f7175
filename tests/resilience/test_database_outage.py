"""PostgreSQL is unreachable for 20 s while payments are in flight.

The stack's DATABASE_URL points at a TCP proxy of the test's own (tcp_proxy.py) in front of
PostgreSQL. After the migrations ran (start_stack) and the path is warm, the proxy resets every
open database connection and refuses new ones for 20 s, then forwards again.

Proves:
- the workflows in flight wait instead of failing: their database steps (record pending,
  fraud check, record outcome: local activities) fail and are retried by Temporal while the
  workflows keep RUNNING at those steps, and every payment ends ``success`` after the
  database is back, with one sale at the gateway;
- meanwhile the API answers 503 with a Retry-After header (never 500, never a hang) to
  GET /payment/{id} and POST /initiate-payment, and a refused POST wrote nothing: the client's
  retry after the outage creates the payment once.

The outage catches workflows at different steps: half of the payments are at "charging" (the
sandbox delays their sale by 3 s, so the cut comes before the charge returns and "record
outcome" must wait), the other half were accepted a moment before the cut (record pending,
fraud check). Skipped without PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from devtools.postgres import create_postgres_database, drop_postgres_database
from payments.config import DatabaseSettings
from tests.conftest import require_postgres
from tests.resilience.support import (
    ResilienceStack,
    initiate,
    payment_body,
    running_stack,
    wait_all_terminal,
    wait_step,
    workflow_status,
    workflow_step,
)
from tests.resilience.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

OUTAGE_SECONDS = 20.0
PAYMENTS = 6
SALE_DELAY_SECONDS = 3.0
# Steps that need the database: these must be the ones waiting.
DATABASE_STEPS = {"recording", "fraud_check", "recording_outcome"}
# An answer slower than this during the outage counts as a hang.
PROMPT_ANSWER_SECONDS = 5.0


@pytest.fixture(scope="module")
def proxied_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ResilienceStack, TcpProxy]]:
    require_postgres()
    url, name = create_postgres_database("payments_resilience")
    try:
        upstream = make_url(url)
        with TcpProxy(upstream.host or "127.0.0.1", upstream.port or 5432) as proxy:
            proxied = upstream.set(host=proxy.host, port=proxy.port)
            database = DatabaseSettings(url=proxied.render_as_string(hide_password=False))
            with running_stack(tmp_path_factory.mktemp("db-outage"), database=database) as stack:
                yield stack, proxy
    finally:
        drop_postgres_database(name)


async def test_database_unreachable_for_20_seconds(
    proxied_stack: tuple[ResilienceStack, TcpProxy],
) -> None:
    stack, proxy = proxied_stack
    temporal = await stack.temporal()
    async with stack.api_client(timeout=15) as api:
        warm = await initiate(api, payment_body())  # every process has its pool connected
        await wait_all_terminal(api, [warm["payment_id"]], seconds=30)

        charging = PAYMENTS // 2
        await stack.add_sandbox_fault(
            operation="sale", kind="delay", delay_seconds=SALE_DELAY_SECONDS, times=charging
        )
        bodies = [payment_body() for _ in range(PAYMENTS)]
        accepted = list(await asyncio.gather(*(initiate(api, b) for b in bodies[:charging])))
        for payment in accepted:
            await wait_step(temporal, f"payment-{payment['payment_id']}", "charging", seconds=10)
        accepted += await asyncio.gather(*(initiate(api, b) for b in bodies[charging:]))
        await asyncio.to_thread(proxy.cut)
        down_at = time.monotonic()
        print(f"database cut: {proxy.reset} open connections reset")

        refused_body = payment_body()
        answers: list[tuple[str, int, str | None, float]] = []
        waiting: dict[str, str] = {}
        while time.monotonic() - down_at < OUTAGE_SECONDS - 1:
            for method, path, body in (
                ("GET", f"/payment/{accepted[0]['payment_id']}", None),
                ("POST", "/initiate-payment", refused_body),
            ):
                started = time.monotonic()
                response = await api.request(method, path, json=body)
                answers.append(
                    (
                        f"{method} {path}",
                        response.status_code,
                        response.headers.get("Retry-After"),
                        time.monotonic() - started,
                    )
                )
            if time.monotonic() - down_at > 10 and not waiting:
                # Temporal's view: still running, each at a step that needs the database.
                for payment in accepted:
                    workflow_id = f"payment-{payment['payment_id']}"
                    assert await workflow_status(temporal, workflow_id) == "RUNNING"
                    waiting[workflow_id] = await workflow_step(temporal, workflow_id)
            await asyncio.sleep(1.0)
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        await asyncio.to_thread(proxy.restore)
        back_at = time.monotonic()

        final = await wait_all_terminal(api, (p["payment_id"] for p in accepted), seconds=60)
        print(
            f"database back after {back_at - down_at:.1f} s; all payments successful "
            f"{time.monotonic() - back_at:.1f} s later"
        )

        # The API answered every request during the outage promptly with 503 + Retry-After.
        assert answers, "no request was made during the outage"
        assert {(what.split()[0], code) for what, code, _, _ in answers} == {
            ("GET", 503),
            ("POST", 503),
        }, answers
        assert all(retry_after for _, _, retry_after, _ in answers), answers
        slowest = max(seconds for *_, seconds in answers)
        assert slowest < PROMPT_ANSWER_SECONDS, answers

        # The workflows waited, each at a database step (retried, see the worker's log).
        assert len(waiting) == PAYMENTS
        assert set(waiting.values()) <= DATABASE_STEPS, waiting
        print("during the outage: " + ", ".join(sorted(waiting.values())))
        assert "recording_outcome" in waiting.values(), waiting

        for body, payment in zip(bodies, accepted, strict=True):
            outcome = final[payment["payment_id"]]
            assert outcome["payment_status"] == "success", outcome
            [sale] = await stack.sales(body["order_id"])
            assert sale["id"] == outcome["transaction_id"]
            assert await workflow_status(temporal, f"payment-{payment['payment_id']}") == (
                "COMPLETED"
            )

        # The refused POSTs wrote nothing; the client's retry now creates the payment once.
        listed = await api.get("/payments", params={"order_id": refused_body["order_id"]})
        assert listed.status_code == 200 and listed.json()["items"] == [], listed.text
        retried = await initiate(api, refused_body)
        done = await wait_all_terminal(api, [retried["payment_id"]], seconds=30)
        assert done[retried["payment_id"]]["payment_status"] == "success"
        assert len(await stack.sales(refused_body["order_id"])) == 1
    stack.assert_no_crash()


async def test_api_answers_503_when_the_database_does_not_answer(
    proxied_stack: tuple[ResilienceStack, TcpProxy],
) -> None:
    stack, proxy = proxied_stack
    async with stack.api_client() as api:
        payment = await initiate(api, payment_body())
        await wait_all_terminal(api, [payment["payment_id"]], seconds=30)
    await asyncio.to_thread(proxy.cut, "blackhole")
    try:
        async with stack.api_client(timeout=PROMPT_ANSWER_SECONDS) as api:
            response = await api.get(f"/payment/{payment['payment_id']}")
        assert response.status_code == 503, response.text
        assert response.headers.get("Retry-After"), response.headers
    finally:
        await asyncio.to_thread(proxy.restore)  # resets the held connections: the API recovers
        async with stack.api_client() as api:
            await wait_all_terminal(api, [payment["payment_id"]], seconds=30)
