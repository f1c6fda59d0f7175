"""Kafka as the service's consumer sees it: messages sent to a topic, and how far the
consumer group has committed (which messages it has finished with)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from payments.config import KafkaSettings


@dataclass(frozen=True)
class Sent:
    partition: TopicPartition
    # The offset after the last message sent: committed up to here, the consumer is done.
    next_offset: int


async def send(
    kafka: KafkaSettings,
    topic: str,
    value: bytes,
    key: bytes,
    times: int = 1,
    headers: list[tuple[str, bytes]] | None = None,
) -> Sent:
    """Send the same message ``times`` times to ``topic`` (its full name), one at a time;
    returns the partition they went to (one key, one partition) and the offset after the
    last of them, as the broker acknowledged them (this broker's end offsets are wrong after
    batched sends, so they are not asked)."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        sent = [
            await producer.send_and_wait(topic, value, key=key, headers=headers)
            for _ in range(times)
        ]
    finally:
        await producer.stop()
    [partition] = {m.partition for m in sent}
    return Sent(TopicPartition(topic, partition), max(m.offset for m in sent) + 1)


async def committed(kafka: KafkaSettings, where: TopicPartition) -> int:
    """The service's consumer group's committed offset of ``where``: the next message it
    will read (-1 when it committed none)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(kafka.consumer_group, partitions=[where])
        return int(offsets[where].offset) if where in offsets else -1
    finally:
        await admin.close()


async def wait_committed(kafka: KafkaSettings, sent: Sent, *, seconds: float = 30) -> None:
    """Until the consumer group has committed past what was ``sent`` (it has finished with
    every message of it)."""
    deadline = time.monotonic() + seconds
    while (now := await committed(kafka, sent.partition)) < sent.next_offset:
        if time.monotonic() > deadline:
            raise AssertionError(f"{sent.partition} committed up to {now}, not {sent.next_offset}")
        await asyncio.sleep(0.2)
