"""A real Kafka consumer for end-to-end tests: reads every topic of a stack from the start and
keeps every delivery, duplicates included, so that a test can count them.

The service publishes at least once (a publish activity retried after the broker stored the
message but its acknowledgement was lost sends it again, with the same deterministic
``event_id``), and its consumers are told to dedupe by ``event_id``. ``of`` shows what a naive
consumer would see (every delivery); ``distinct`` shows what a deduplicating consumer sees,
after checking that every redelivery is the same event, so that deduplicating loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer

from payments.events.closing import stop_consumer
from payments.events.topics import NOTIFICATIONS, PAYMENT_STATUS, REFUND_REQUEST

Event = dict[str, Any]


class EventReader:
    def __init__(
        self,
        bootstrap: str,
        prefix: str = "",
        *,
        on_event: Callable[[Event], None] | None = None,
        fetch_max_wait_ms: int = 500,
    ) -> None:
        self._prefix = prefix
        # Called with each delivery as it is read (the benchmarks stamp arrival times with it
        # instead of scanning ``events`` again and again).
        self._on_event = on_event
        self._consumer = AIOKafkaConsumer(
            *(prefix + t for t in (PAYMENT_STATUS, REFUND_REQUEST, NOTIFICATIONS)),
            bootstrap_servers=bootstrap,
            group_id=None,  # no group: read everything, every time (FACTS: 'latest' is unreliable)
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            # How long the broker may hold a fetch that found nothing. Tansu holds it that long
            # even when a message arrives meanwhile (aiokafka's 500 ms default adds about
            # 120 ms, up to 250 ms, to every event): the benchmarks ask for less.
            fetch_max_wait_ms=fetch_max_wait_ms,
        )
        # Every delivery per topic, in the order read, duplicates included.
        self.events: dict[str, list[Event]] = {}
        self.deliveries: dict[str, int] = {}  # event_id -> times delivered
        # event_id -> the Kafka headers of its first delivery (traceparent...); kept apart
        # from the event, since a redelivery may carry another span of the same trace.
        self.headers: dict[str, dict[str, str]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._pump())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await stop_consumer(self._consumer)

    async def _pump(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    event = json.loads(message.value)
                    if not isinstance(event, dict) or "event_id" not in event:
                        continue  # another producer's message (e.g. a status hint), not an event
                    event["_topic"] = message.topic.removeprefix(self._prefix)
                    event["_key"] = message.key.decode() if message.key else None
                    self.headers.setdefault(
                        event["event_id"],
                        {k: v.decode("latin-1") for k, v in message.headers or ()},
                    )
                    seen = self.deliveries.get(event["event_id"], 0)
                    self.deliveries[event["event_id"]] = seen + 1
                    self.events.setdefault(event["_topic"], []).append(event)
                    if self._on_event is not None:
                        self._on_event(event)

    def of(self, topic: str, **match: Any) -> list[Event]:
        """Every delivery of the matching events, duplicates included, in the order read."""
        return [
            e for e in self.events.get(topic, []) if all(e.get(k) == v for k, v in match.items())
        ]

    def distinct(self, topic: str, **match: Any) -> list[Event]:
        """The matching events as a consumer deduplicating by ``event_id`` sees them: the
        first delivery of each. Raises if a redelivery differs from the first (then
        deduplicating by ``event_id`` would drop information)."""
        first: dict[str, Event] = {}
        for event in self.of(topic, **match):
            kept = first.setdefault(event["event_id"], event)
            if kept != event:
                raise AssertionError(f"event {event['event_id']} redelivered changed: {event}")
        return list(first.values())

    async def wait_for(
        self,
        topic: str,
        condition: Callable[[list[Event]], bool] = bool,
        *,
        seconds: float = 30.0,
        **match: Any,
    ) -> list[Event]:
        deadline = time.monotonic() + seconds
        while True:
            found = self.of(topic, **match)
            if condition(found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching events on {topic} for {match}: {found}")
            await asyncio.sleep(0.1)
