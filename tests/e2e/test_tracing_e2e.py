"""End to end, with tracing on: one payment is one trace, from the HTTP request through its
workflow and activities in the worker to the Kafka events it announced (their traceparent),
and a payment asked for on the initiation topic continues the producer's trace. The stack's
processes export to an in-memory OTLP collector (tests/support/otlp.py)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from devtools.events import EventReader
from payments.config import TracingSettings
from payments.events.topics import PAYMENT_INITIATION, PAYMENT_STATUS
from tests.resilience.support import (
    ResilienceStack,
    payment_body,
    running_stack,
    send_initiation,
    wait_terminal,
)
from tests.support.otlp import MemoryCollector, ReceivedSpan

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def collector() -> Iterator[MemoryCollector]:
    with MemoryCollector() as running:
        yield running


@pytest.fixture(scope="module")
def stack(
    collector: MemoryCollector, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ResilienceStack]:
    tracing = TracingSettings(otlp_endpoint=collector.endpoint, export_interval_seconds=0.2)
    with running_stack(tmp_path_factory.mktemp("traced"), tracing=tracing) as running:
        yield running


@pytest.fixture(scope="module")
async def events(stack: ResilienceStack) -> AsyncIterator[EventReader]:
    reader = EventReader(stack.endpoints.kafka_bootstrap, stack.settings.kafka.topic_prefix)
    await reader.start()
    yield reader
    await reader.stop()


async def spans_of(
    collector: MemoryCollector, trace_id: str, *, until: set[str], seconds: float = 30
) -> list[ReceivedSpan]:
    """The trace's spans once spans named as in ``until`` (prefixes) have all arrived."""
    deadline = time.monotonic() + seconds
    while True:
        spans = collector.of_trace(trace_id)
        if all(any(s.name.startswith(name) for s in spans) for name in until):
            return spans
        assert time.monotonic() < deadline, (until, sorted({s.name for s in spans}))
        await asyncio.sleep(0.2)


def trace_of(traceparent: str) -> str:
    return traceparent.split("-")[1]


async def test_one_payment_is_one_trace_from_the_request_to_its_events(
    stack: ResilienceStack, collector: MemoryCollector, events: EventReader
) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    async with stack.api_client() as api:
        response = await api.post(
            "/initiate-payment",
            json=payment_body(),
            headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
        )
        assert response.status_code == 202, response.text
        payment_id = response.json()["payment_id"]
        assert (await wait_terminal(api, payment_id, seconds=60))["payment_status"] == "success"
    announced = await events.wait_for(
        PAYMENT_STATUS, lambda found: len(found) == 2, payment_id=payment_id, seconds=30
    )
    # The events carry the payment's trace to whoever consumes them.
    for event in announced:
        assert trace_of(events.headers[event["event_id"]]["traceparent"]) == trace_id

    spans = await spans_of(
        collector,
        trace_id,
        until={
            "POST /initiate-payment",
            "StartWorkflow:PaymentWorkflow",
            "RunWorkflow:PaymentWorkflow",
            "RunActivity:charge",
        },
    )
    by_service = {(s.service, s.name.split(":")[0]) for s in spans}
    assert ("payment-service-api", "POST /initiate-payment") in by_service
    assert ("payment-service-api", "StartWorkflow") in by_service
    assert ("payment-service-worker", "RunWorkflow") in by_service
    assert ("payment-service-worker", "RunActivity") in by_service
    # FastAPI's own server span continues the caller's: the trace has one root, the caller's.
    [server] = [s for s in spans if s.name == "POST /initiate-payment"]
    assert server.parent_span_id == caller_span


async def test_a_payment_from_the_initiation_topic_continues_the_producers_trace(
    stack: ResilienceStack, collector: MemoryCollector
) -> None:
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    await send_initiation(stack, headers=[("traceparent", traceparent.encode())])
    spans = await spans_of(
        collector,
        trace_id,
        until={
            f"{stack.settings.kafka.topic(PAYMENT_INITIATION)} process",
            "StartWorkflow:PaymentWorkflow",
            "RunActivity:charge",
        },
        seconds=60,
    )
    assert {s.service for s in spans} >= {"payment-service-consumer", "payment-service-worker"}
