"""Stopping an aiokafka consumer completely, even after a failed fetch.

aiokafka 0.14's ``Fetcher.close`` cancels its pending fetch tasks and awaits each without
catching its ``CancelledError``. A fetch that failed (a slow broker's ``RequestTimedOutError``)
sleeps its retry backoff inside such a task, so ``AIOKafkaConsumer.stop()`` called then ends
with that task's ``CancelledError``: the caller looks cancelled although nobody cancelled it,
and the client's connections are left open.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """``consumer.stop()``, finishing what it skipped when a cancelled fetch task's
    ``CancelledError`` escaped it. A cancellation of the calling task itself still propagates."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        # What stop() did not reach: the fetch tasks after the one that raised (not yet
        # cancelled), then the client and its connections.
        pending = list(consumer._fetcher._pending_tasks)
        for fetch in pending:
            fetch.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await consumer._client.close()
