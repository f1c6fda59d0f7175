"""The consumer loop and its lag metric across a group rebalance, over a fake consumer that
answers as aiokafka 0.14 does (the real broker: tests/infra/test_consumer_rebalance.py).

A broker restart forgets the group (its memory-only storage here, a coordinator failover in
production): the next commit is refused with ``CommitFailedError``, and a partition given away
meanwhile makes ``commit``, ``highwater`` and ``position`` refuse it.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord
from structlog.testing import capture_logs

from workers.consumer import consume
from workers.consumer_metrics import ConsumerMetrics

P0 = TopicPartition("payment_status", 0)
P1 = TopicPartition("payment_status", 1)


def record(partition: TopicPartition, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=partition.topic,
        partition=partition.partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=b"{}",
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=2,
        headers=[],
    )


class RebalancingConsumer:
    """One batch, then nothing; the first commit of P0 finds the group rebalanced."""

    def __init__(self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        self.batches = [batch]
        self.assigned = {P0, P1}
        self.committed: list[tuple[TopicPartition, int]] = []
        self.refused: list[tuple[TopicPartition, int]] = []

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        await asyncio.sleep(0)
        return self.batches.pop() if self.batches else {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        [(partition, offset)] = offsets.items()
        if partition == P0 and not self.refused:
            self.refused.append((partition, offset))
            raise CommitFailedError("the group has already rebalanced")
        self.committed.append((partition, offset))

    def assignment(self) -> list[TopicPartition]:  # P0 first: a set, in a known order
        return [p for p in (P0, P1) if p in self.assigned]

    def highwater(self, partition: TopicPartition) -> int:
        assert partition in self.assigned, "Partition is not assigned"
        return 10

    async def position(self, partition: TopicPartition) -> int:
        if partition not in self.assigned:
            raise IllegalStateError(f"Partition {partition} is not assigned")
        return 4


async def test_a_commit_refused_after_a_rebalance_leaves_that_partitions_rest_to_come_again() -> (
    None
):
    fake = RebalancingConsumer({P0: [record(P0, 3), record(P0, 4)], P1: [record(P1, 7)]})
    handled: list[tuple[int, int]] = []
    stop = asyncio.Event()

    async def handle(message: ConsumerRecord[bytes, bytes]) -> None:
        handled.append((message.partition, message.offset))
        if len(handled) == 2:
            stop.set()

    with capture_logs() as logs:
        # Before the fix, CommitFailedError ended the loop, and the consumer process with it.
        await asyncio.wait_for(consume(cast(Any, fake), handle, ConsumerMetrics(), stop), 5)

    # P0's offset 4 is not handled on a stale assignment: it comes again from offset 3.
    assert handled == [(0, 3), (1, 7)]
    assert fake.refused == [(P0, 4)]
    assert fake.committed == [(P1, 8)]
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert warning["event"].startswith("offset not committed: the group rebalanced")
    assert (warning["partition"], warning["offset"], warning["error"]) == (
        0,
        3,
        "CommitFailedError",
    )


class GivenAwayDuringPosition(RebalancingConsumer):
    """The group rebalances while the position of the first partition is awaited."""

    def __init__(self, lose: TopicPartition) -> None:
        super().__init__({})
        self.lose = lose

    async def position(self, partition: TopicPartition) -> int:
        self.assigned.discard(self.lose)
        return await super().position(partition)


@pytest.mark.parametrize("lose", [P0, P1], ids=["the awaited one", "the next one"])
async def test_lag_is_observed_across_a_rebalance(lose: TopicPartition) -> None:
    metrics = ConsumerMetrics()
    # Before the fix: IllegalStateError from position(), AssertionError from highwater().
    await metrics.observe_lag(cast(Any, GivenAwayDuringPosition(lose)))

    kept = P1 if lose == P0 else P0
    assert metrics.registry.get_sample_value(
        "payments_consumer_lag", {"topic": kept.topic, "partition": str(kept.partition)}
    ) == (10 - 4)
    assert (
        metrics.registry.get_sample_value(
            "payments_consumer_lag", {"topic": lose.topic, "partition": str(lose.partition)}
        )
        is None
    )
