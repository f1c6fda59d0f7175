"""The consumer loop goes on when its group rebalances while it handles a message (a real
Tansu broker; a second consumer joins the group, as a scaled-out deployment's does).

The offsets of a partition this consumer lost cannot be committed any more; those messages
are read again by whoever holds the partition now, and the loop carries on with the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from asyncio import FIRST_COMPLETED

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from structlog.testing import capture_logs

from payments.config import KafkaSettings
from payments.events.admin import ensure_topics
from payments.events.closing import stop_consumer
from payments.events.topics import PAYMENT_STATUS
from workers.consumer import consume
from workers.consumer_metrics import ConsumerMetrics

PARTITIONS = 3  # two consumers cannot each hold all of them


def group_member(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Tansu's group join takes half the session timeout: keep it short.
        session_timeout_ms=2000,
        heartbeat_interval_ms=300,
    )
    return consumer


async def test_a_rebalance_while_a_message_is_handled_does_not_stop_the_loop(
    tansu_bootstrap: str,
) -> None:
    kafka = KafkaSettings(
        bootstrap_servers=tansu_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
        partitions=PARTITIONS,
    )
    await ensure_topics(kafka, [PAYMENT_STATUS])
    topic = kafka.topic(PAYMENT_STATUS)
    group = f"g{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=tansu_bootstrap)
    await producer.start()
    try:
        for partition in range(PARTITIONS):
            await producer.send_and_wait(topic, f"m{partition}".encode(), partition=partition)
    finally:
        await producer.stop()

    first = group_member(tansu_bootstrap, topic, group)
    second = group_member(tansu_bootstrap, topic, group)
    second_reads: list[ConsumerRecord[bytes, bytes]] = []
    handled: list[ConsumerRecord[bytes, bytes]] = []
    rebalanced = asyncio.Event()

    async def second_reading() -> None:
        await second.start()
        while True:
            for messages in (await second.getmany(timeout_ms=200)).values():
                second_reads.extend(messages)

    async def handle(message: ConsumerRecord[bytes, bytes]) -> None:
        handled.append(message)
        if len(handled) > 1:
            return
        # While the first message is handled, a second consumer joins the group and the
        # first one gives some of its partitions away.
        held = set(first.assignment())
        tasks.append(asyncio.create_task(second_reading()))
        deadline = time.monotonic() + 30
        while set(first.assignment()) in (held, set()):
            assert time.monotonic() < deadline, "the group did not rebalance"
            await asyncio.sleep(0.1)
        rebalanced.set()

    stop = asyncio.Event()
    tasks: list[asyncio.Task[object]] = []
    await first.start()
    try:
        with capture_logs() as logs:
            consuming = asyncio.create_task(consume(first, handle, ConsumerMetrics(), stop))
            tasks.append(consuming)
            waiting = asyncio.create_task(rebalanced.wait())
            tasks.append(waiting)
            await asyncio.wait({consuming, waiting}, timeout=60, return_when=FIRST_COMPLETED)
            lost = set(range(PARTITIONS)) - {tp.partition for tp in first.assignment()}
            deadline = time.monotonic() + 30
            while lost - {m.partition for m in second_reads}:
                # Without the loop's care, the commit of a lost partition's offset raised and
                # ended the loop (and the consumer process with it).
                if consuming.done():
                    consuming.result()
                assert time.monotonic() < deadline, f"{lost} not read again: {second_reads}"
                await asyncio.sleep(0.1)
            assert not consuming.done()
            stop.set()
            await asyncio.wait_for(consuming, timeout=10)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await stop_consumer(first)
        await stop_consumer(second)

    # The first consumer had a message of every partition in hand when the group rebalanced;
    # those of the partitions it lost were not committed, and the second consumer read them.
    assert lost, "the first consumer kept every partition"
    skipped = [e for e in logs if e["event"].startswith("offset not committed")]
    assert skipped and {e["partition"] for e in skipped} <= lost, logs
