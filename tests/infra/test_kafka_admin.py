"""ensure_topics / wait_for_kafka against a real Tansu broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from devtools.processes import ProcessGroup, ProcessSpec
from devtools.stack import free_port, tansu_argv, tcp_ready
from payments.config import KafkaSettings
from payments.errors import ServiceUnavailable
from payments.events.admin import ensure_topics, wait_for_kafka
from payments.events.topics import ALL_TOPICS


async def _partitions(bootstrap: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        listed = [t for t in topics if t in set(await admin.list_topics())]
        # describe_topics([]) describes every topic of the broker: other tests' too.
        described = await admin.describe_topics(listed) if listed else []
    finally:
        await admin.close()
    return {d["topic"]: len(d["partitions"]) for d in described}


async def test_ensure_topics_creates_the_four_topics_and_is_idempotent(
    tansu_bootstrap: str,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    kafka = KafkaSettings(bootstrap_servers=tansu_bootstrap, topic_prefix=prefix, partitions=2)
    expected = [prefix + name for name in ALL_TOPICS]
    assert await _partitions(tansu_bootstrap, expected) == {}

    await ensure_topics(kafka)
    assert await _partitions(tansu_bootstrap, expected) == dict.fromkeys(expected, 2)

    # Second run: nothing to do, no error, existing topics left as they are.
    await ensure_topics(kafka.model_copy(update={"partitions": 5}))
    assert await _partitions(tansu_bootstrap, expected) == dict.fromkeys(expected, 2)


async def test_ensure_topics_creates_only_the_missing_ones(tansu_bootstrap: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    kafka = KafkaSettings(bootstrap_servers=tansu_bootstrap, topic_prefix=prefix, partitions=1)
    await ensure_topics(kafka, [ALL_TOPICS[0]])
    await ensure_topics(kafka.model_copy(update={"partitions": 3}))
    partitions = await _partitions(tansu_bootstrap, [prefix + name for name in ALL_TOPICS])
    assert partitions == {
        prefix + ALL_TOPICS[0]: 1,
        **{prefix + name: 3 for name in ALL_TOPICS[1:]},
    }


async def test_wait_for_kafka_gives_up_with_the_address(tansu_bootstrap: str) -> None:
    await wait_for_kafka(tansu_bootstrap, timeout=5)

    nowhere = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match=nowhere):
        await wait_for_kafka(nowhere, timeout=0.5)
    assert time.monotonic() - started < 5


async def test_ensure_topics_waits_for_a_broker_that_is_still_starting(tmp_path: Path) -> None:
    port = free_port()
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
    with ProcessGroup(tmp_path / "tansu.log") as group:
        creating = asyncio.create_task(ensure_topics(kafka, connect_timeout=10))
        await asyncio.sleep(0.5)
        assert not creating.done()
        spec = ProcessSpec(
            "kafka", tansu_argv("127.0.0.1", port), ready=tcp_ready("127.0.0.1", port)
        )
        await asyncio.to_thread(group.start, spec)
        await asyncio.wait_for(creating, timeout=10)
        assert await _partitions(kafka.bootstrap_servers, list(ALL_TOPICS)) == dict.fromkeys(
            ALL_TOPICS, kafka.partitions
        )
