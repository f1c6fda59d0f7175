"""The Kafka broker is killed and kept down for 30 s during a run of payments, then started
again.

Proves: payments accepted before and during the outage still complete (their status in the
API reaches ``success`` once the broker is back: a workflow waits at "announce" while its
publish activity is retried), and no event is lost: every payment_status event whose
publishing was due during the outage, and its notification, arrive after the broker is back,
each with its deterministic id. Publishing is at-least-once (a publish whose acknowledgement
was lost is sent again): redeliveries are counted, must be the same event, and a consumer
deduplicating by ``event_id`` (as the Order and Notification services do) sees each status
change exactly once.

What was published when is controlled, not guessed: the payments accepted before the outage
are held at their charge (the gateway sandbox is frozen) until each has announced ``pending``
and the broker is down, so their ``pending`` event went out before the outage and their
``success`` during it.

Limitation of the embedded broker, not of the service: this Tansu build keeps everything in
memory, so restarting it loses the topics and every message published before the outage. The
test therefore re-creates the topics right after the restart (``ensure_topics``, as ``make run``
does at start) and reads with a fresh consumer: the payments accepted during the outage show
``pending`` and ``success``, those accepted before it only ``success`` (their ``pending`` was
acknowledged before the outage, and this broker forgot it). With Apache Kafka
(docker-compose.yml) the earlier messages survive a broker restart and would be read too.

For the same reason the worker and the consumer are frozen (SIGSTOP) for the fraction of a
second between the broker's restart and the topics' re-creation, so that they reconnect to a
broker that has its topics, as they would with a persistent one. Without that, the worker's
queued messages reach Tansu 0.6.0 before the topics exist, and Tansu's memory storage then
mixes up its offsets: later produces either fail (UnknownError; the broker logs ``AlreadyExists
... records/00000000000000000000.batch``) or are acknowledged at offsets already taken and
never delivered to any consumer: acknowledged messages lost by the broker, which no client can
detect (seen in this test's first version: a payment's success event never arrived).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from devtools.events import EventReader
from payments.events.admin import ensure_topics
from payments.events.envelope import event_id
from payments.events.topics import NOTIFICATIONS, PAYMENT_STATUS
from tests.resilience.support import (
    ResilienceStack,
    get_payment,
    initiate,
    payment_body,
    running_stack,
    wait_all_terminal,
    wait_step,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OUTAGE_SECONDS = 30.0
BEFORE_OUTAGE = 10  # accepted right before the broker stops: in flight when it goes
DURING_OUTAGE = 10  # accepted while the broker is down


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResilienceStack]:
    with running_stack(tmp_path_factory.mktemp("kafka-outage")) as running:
        yield running


async def test_broker_down_for_30_seconds(stack: ResilienceStack) -> None:
    async with stack.api_client() as api:
        # The producer is connected and the path is warm before anything breaks.
        warm = await initiate(api, payment_body())
        await wait_all_terminal(api, [warm["payment_id"]], seconds=30)

        # Held at their charge: announced pending, not charged, when the broker goes.
        temporal = await stack.temporal()
        with stack.frozen("sandbox"):
            before = await asyncio.gather(
                *(initiate(api, payment_body()) for _ in range(BEFORE_OUTAGE))
            )
            for payment in before:
                workflow_id = f"payment-{payment['payment_id']}"
                await wait_step(temporal, workflow_id, "charging", seconds=30)
            await stack.kill("kafka")
        down_at = time.monotonic()

        during = []
        for _ in range(DURING_OUTAGE):  # spread over the first seconds of the outage
            during.append(await initiate(api, payment_body()))
            await asyncio.sleep(0.3)

        # While the broker is down nothing is lost or failed. The payments charged meanwhile
        # have their outcome recorded; only its announcement waits for the broker.
        recorded = await wait_all_terminal(api, (p["payment_id"] for p in before), seconds=15)
        assert {p["payment_status"] for p in recorded.values()} == {"success"}, recorded
        # The others are not charged before their pending event is out: they wait there.
        await asyncio.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
        waiting = await asyncio.gather(*(get_payment(api, p["payment_id"]) for p in during))
        assert {p["payment_status"] for p in waiting} == {"pending"}, waiting
        assert time.monotonic() - down_at < OUTAGE_SECONDS, "all of that during the outage"
        stack.assert_no_crash()

        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        # Memory-only broker: the topics are gone. Re-create them before the service's clients
        # reconnect (they are frozen meanwhile), as a persistent broker would still have them.
        with stack.frozen("worker", "consumer"):
            await stack.restart("kafka")
            back_at = time.monotonic()
            await ensure_topics(stack.settings.kafka)
        print(f"broker down for {back_at - down_at:.1f} s")

        reader = EventReader(stack.endpoints.kafka_bootstrap, stack.settings.kafka.topic_prefix)
        await reader.start()
        try:
            final = await wait_all_terminal(
                api, (p["payment_id"] for p in [*before, *during]), seconds=90
            )
            assert {p["payment_status"] for p in final.values()} == {"success"}, final
            print(f"all payments successful {time.monotonic() - back_at:.1f} s after restart")

            for payment in [*before, *during]:
                pid = payment["payment_id"]
                await reader.wait_for(PAYMENT_STATUS, seconds=60, payment_id=pid, status="success")
                await reader.wait_for(NOTIFICATIONS, seconds=30, payment_id=pid)
            print(f"all events read {time.monotonic() - back_at:.1f} s after restart")
            await asyncio.sleep(1)  # let late redeliveries arrive too, to be counted

            for payment in [*before, *during]:
                pid = payment["payment_id"]
                # What a consumer deduplicating by event_id sees: each status change once.
                found = reader.distinct(PAYMENT_STATUS, payment_id=pid)
                expected = ["success"] if payment in before else ["pending", "success"]
                assert [e["status"] for e in found] == expected, (payment in before, found)
                assert [e["event_id"] for e in found] == [
                    event_id("payment", pid, status) for status in expected
                ]
                [note] = reader.distinct(NOTIFICATIONS, payment_id=pid)
                assert note["template"] == "payment_success"
            redelivered = sum(reader.deliveries.values()) - len(reader.deliveries)
            print(
                f"{len(before) + len(during)} payments announced after the outage "
                f"({len(during)} accepted during it); {redelivered} redeliveries, each the same "
                "event as its first delivery"
            )
        finally:
            await reader.stop()

        # The service is whole again: a new payment goes through and is announced at once.
        after = await initiate(api, payment_body())
        await wait_all_terminal(api, [after["payment_id"]], seconds=30)
        await reader_sees_success(stack, after["payment_id"])
    stack.assert_no_crash()


async def reader_sees_success(stack: ResilienceStack, payment_id: str) -> None:
    reader = EventReader(stack.endpoints.kafka_bootstrap, stack.settings.kafka.topic_prefix)
    await reader.start()
    try:
        found = await reader.wait_for(
            PAYMENT_STATUS, lambda events: len(events) == 2, seconds=30, payment_id=payment_id
        )
        assert [e["status"] for e in found] == ["pending", "success"]
    finally:
        await reader.stop()
