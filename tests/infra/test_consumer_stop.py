"""Stopping a Kafka consumer while a failed fetch waits out its backoff (a real Tansu broker,
frozen with SIGSTOP so that a fetch times out)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from devtools.processes import ProcessGroup, ProcessSpec
from devtools.stack import free_port, tansu_argv, tcp_ready
from payments.config import KafkaSettings
from payments.events.admin import ensure_topics
from payments.events.closing import stop_consumer
from payments.events.topics import PAYMENT_STATUS
from tests.support.processes import frozen


async def test_a_consumer_stops_whole_while_a_failed_fetch_backs_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    prefix = f"t{uuid.uuid4().hex[:8]}."
    with ProcessGroup(tmp_path / "tansu.log") as group:
        group.start(
            ProcessSpec("kafka", tansu_argv("127.0.0.1", port), ready=tcp_ready("127.0.0.1", port))
        )
        await ensure_topics(KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix))
        consumer = AIOKafkaConsumer(
            prefix + PAYMENT_STATUS,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            request_timeout_ms=1000,
            # Long, so that the failed fetch is still in its backoff when the consumer stops.
            retry_backoff_ms=60_000,
        )
        await consumer.start()
        await consumer.getmany(timeout_ms=300)
        caplog.set_level(logging.ERROR, logger="aiokafka.consumer.fetcher")
        with frozen(group, "kafka"):
            deadline = time.monotonic() + 15
            while "Failed fetch messages" not in caplog.text:
                assert time.monotonic() < deadline, "no fetch failed while the broker was frozen"
                await asyncio.sleep(0.1)
            # Without stop_consumer, aiokafka's stop() ends here with CancelledError.
            await asyncio.wait_for(stop_consumer(consumer), timeout=10)
        assert consumer._client._conns == {}  # every connection closed
        assert all(task.done() for task in consumer._fetcher._pending_tasks)
