"""The baseline: a toy workflow of three no-op regular activities, on the stack's own Temporal
dev server, run by a worker process of its own (``python -m benchmarks.toy``).

Its own process, not a worker inside the benchmark: the benchmark's event loop is busy
starting the toys and waiting for their results, and a worker sharing it (and its GIL) would
both slow down and hide its CPU in the benchmark's; as a process it is counted like the
payment worker, and compares with it. Plain payloads (no codec): the toy is what Temporal
itself costs, the payment what the service adds to it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

ACTIVITIES_PER_TOY = 3
TASK_QUEUE = "bench-toy"


@dataclass(frozen=True)
class ToyStep:
    step: int


@dataclass(frozen=True)
class ToyRequest:
    index: int


@dataclass(frozen=True)
class ToyResult:
    steps: int


@activity.defn
async def noop(request: ToyStep) -> ToyStep:
    return request


@workflow.defn
class ToyWorkflow:
    @workflow.run
    async def run(self, request: ToyRequest) -> ToyResult:
        for step in range(ACTIVITIES_PER_TOY):
            await workflow.execute_activity(
                noop, ToyStep(step), start_to_close_timeout=timedelta(seconds=30)
            )
        return ToyResult(ACTIVITIES_PER_TOY)


@dataclass(frozen=True)
class ToyRun:
    started: float  # monotonic, when the first start was sent
    completed: list[float]  # monotonic, when each result came back


async def run_toys(
    client: Client,
    count: int,
    done: Callable[[], None] = lambda: None,
    task_queue: str = TASK_QUEUE,
) -> ToyRun:
    """Start ``count`` toys at once, then wait for every result (``done`` after each)."""
    run = f"toy-{time.time_ns()}"
    started = time.monotonic()
    handles = await asyncio.gather(
        *(
            client.start_workflow(
                ToyWorkflow.run, ToyRequest(i), id=f"{run}-{i}", task_queue=task_queue
            )
            for i in range(count)
        )
    )

    async def finished(handle: WorkflowHandle[Any, ToyResult]) -> float:
        await handle.result()
        done()
        return time.monotonic()

    completed = await asyncio.gather(*(finished(h) for h in handles))
    return ToyRun(started, sorted(completed))


async def _serve(address: str, namespace: str, task_queue: str, ready_file: Path) -> None:
    client = await Client.connect(address, namespace=namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=task_queue, workflows=[ToyWorkflow], activities=[noop]):
        await asyncio.to_thread(
            ready_file.touch
        )  # polling from here on: the benchmark may start toys
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="The toy workflow's worker (benchmarks).")
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", default=TASK_QUEUE)
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(_serve(args.address, args.namespace, args.task_queue, args.ready_file))


if __name__ == "__main__":
    main()
