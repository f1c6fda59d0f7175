"""End to end, as an operator works: finding runs in the Temporal Web UI by what they are
about (search attributes set by the API at start and by the workflow at each status change),
through the UI's own HTTP API as its search box does; replaying a run's history from the
server against this code before a deploy (``payments replay``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools.stack import settings_env
from payments.events.topics import PAYMENT_INITIATION
from tests.e2e.conftest import Stack
from tests.e2e.test_payments_e2e import pay, refund, wait_status
from tests.support import kafka

pytestmark = pytest.mark.e2e

PAYPAL = {"payment_method": "wallet", "payment_token": "fake-paypal-one-time-nonce"}


def ids(found: list[dict[str, object]]) -> list[str]:
    return sorted(str(e["execution"]["workflowId"]) for e in found)  # type: ignore[index]


async def test_an_operator_finds_the_failed_wallet_payments_of_a_user_today(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    declined = await pay(api, user_id=user, amount="2000.00", **PAYPAL)
    paid = await pay(api, user_id=user, **PAYPAL)
    declined_card = await pay(api, user_id=user, amount="2000.00")
    assert [p["payment_status"] for p in (declined, paid, declined_card)] == [
        "failure",
        "success",
        "failure",
    ]
    today = datetime.now(UTC).date().isoformat()
    found = await stack.ui_workflows(
        'WorkflowType="PaymentWorkflow" AND PaymentStatus="failure" AND PaymentMethod="wallet"'
        f' AND UserId="{user}" AND StartTime >= "{today}T00:00:00Z"'
    )
    assert ids(found) == [f"payment-{declined['payment_id']}"]
    # Found by its own ids too; every run of the user, whatever its outcome.
    by_order = await stack.ui_workflows(f'OrderId="{paid["order_id"]}" AND PaymentStatus="success"')
    assert ids(by_order) == [f"payment-{paid['payment_id']}"]
    [listed] = await stack.ui_workflows(f'PaymentId="{declined["payment_id"]}"')
    attributes = listed["searchAttributes"]["indexedFields"]
    assert set(attributes) >= {"PaymentStatus", "AmountMinor", "MerchantId", "Currency"}


async def test_an_operator_finds_a_refund_by_its_payment_and_status(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    payment = await pay(api)
    response = await refund(api, payment["payment_id"])
    assert response.status_code == 202, response.text
    done = await wait_status(api, response.headers["Location"], "refund_status")
    assert done["refund_status"] == "processed"
    found = await stack.ui_workflows(
        f'WorkflowType="RefundWorkflow" AND PaymentId="{payment["payment_id"]}"'
        ' AND RefundStatus="processed"'
    )
    assert ids(found) == [f"refund-{done['refund_id']}"]


async def test_an_operator_replays_a_run_from_the_server_before_a_deploy(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    payment = await pay(api)
    # The history as the server holds it: encrypted payloads, decoded by the command.
    replayed = await asyncio.to_thread(
        subprocess.run,
        [
            str(Path(sys.executable).parent / "payments"),
            "replay",
            f"payment-{payment['payment_id']}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **settings_env(stack.settings)},
        check=False,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert f"payment-{payment['payment_id']}: replays" in replayed.stdout


async def scrape(url: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    """Every sample of a Prometheus endpoint, by name and labels as written (waiting a
    little for a process that is still starting)."""
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        for _ in range(50):
            try:
                response = await http.get(url, headers=headers)
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"nothing serves {url}")
    assert response.status_code == 200, response.text
    return {
        sample.name + repr(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    wanted = [f"({k!r}, {v!r})" for k, v in labels.items()]
    return sum(
        value
        for key, value in samples.items()
        if key.startswith(name + "[") and all(w in key for w in wanted)
    )


async def test_the_api_and_the_worker_serve_their_metrics(
    api: httpx.AsyncClient, admin_api: httpx.AsyncClient, stack: Stack
) -> None:
    worker = f"http://{stack.settings.temporal.metrics_address}/metrics"
    before = await scrape(worker)
    declined = await pay(api, amount="2001.00")  # the processor's 2001, insufficient funds
    assert declined["payment_status"] == "failure"

    after = await scrape(worker)
    assert total(after, "payments_gateway_declines_total", code="2001") == (
        total(before, "payments_gateway_declines_total", code="2001") + 1
    )
    sales = total(after, "payments_gateway_request_duration_count", operation="sale")
    assert sales > total(before, "payments_gateway_request_duration_count", operation="sale")
    # The SDK's own: workflows completed and activities run on this worker.
    assert total(after, "temporal_workflow_completed_total") > 0
    assert total(after, "temporal_activity_execution_latency_count") > 0

    metrics = await scrape(f"{stack.endpoints.api_url}/metrics", headers=dict(admin_api.headers))
    assert total(metrics, "payments_payments", status="failure") >= 1
    assert (
        total(metrics, "payments_api_requests_total", route="/initiate-payment", status="202") >= 1
    )


async def test_the_consumer_reports_lag_handled_messages_and_dead_letters(stack: Stack) -> None:
    consumer = f"http://{stack.settings.kafka.consumer_metrics_address}/metrics"
    before = await scrape(consumer)
    initiation = stack.topic(PAYMENT_INITIATION)
    await kafka.send(stack.settings.kafka, initiation, b"{not json", key=b"bad-message")
    deadline = time.monotonic() + 60  # the consumer may still be joining its group
    while True:
        after = await scrape(consumer)
        moved = total(after, "payments_consumer_dead_letters_total")
        if moved > total(before, "payments_consumer_dead_letters_total"):
            break
        assert time.monotonic() < deadline, "the bad message was not counted"
        await asyncio.sleep(0.2)
    assert total(after, "payments_consumer_messages_total", topic=initiation) > total(
        before, "payments_consumer_messages_total", topic=initiation
    )
    # Every partition it handled from, with its lag (all read: none left behind).
    lags = {k: v for k, v in after.items() if k.startswith("payments_consumer_lag[")}
    assert any(initiation in key for key in lags), after
    assert all(value >= 0 for value in lags.values())
