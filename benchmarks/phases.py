"""The phases of a benchmark run, each measured the same way: its latencies, its throughput from
the first request sent to the last final status, and the CPU seconds each process used between
its start and its end.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rich.progress import Progress
from temporalio.client import Client

from benchmarks import toy
from benchmarks.load import (
    Operation,
    Sample,
    arrival_times,
    closed_loop,
    open_loop,
)
from benchmarks.measure import BENCH_PROCESS, ProcessWatch, cpu_delta, percentiles

T = TypeVar("T")


@dataclass
class PhaseResult:
    """One phase's figures. Times in seconds; ``started``/``ended`` from the run's zero."""

    name: str
    kind: str  # toy | payment | refund
    mode: str  # burst | closed | open | sequential
    clients: int | None
    count: int
    completed: int
    started: float
    ended: float
    throughput: float  # completed per second, first request to last final status
    post: dict[str, float] | None = None
    final: dict[str, float] | None = None
    synchronous: int = 0
    errors: list[str] = field(default_factory=list)
    offered_rate: float | None = None  # open loop: requests per second sent
    lag: dict[str, float] | None = None  # open loop: how late requests left
    cpu: dict[str, float] = field(default_factory=dict)  # seconds, by process
    peak_rss: dict[str, int] = field(default_factory=dict)  # bytes, by process, run so far
    # Raw data for the charts: seconds from the run's zero / latencies in seconds.
    completions: list[float] = field(default_factory=list)
    post_samples: list[float] = field(default_factory=list)
    final_samples: list[float] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # payments or refunds that ended in success

    @property
    def wall(self) -> float:
        return self.ended - self.started

    def cpu_per_item(self, *, service_only: bool = True) -> dict[str, float]:
        """CPU seconds per completed item, by process (the benchmark's own left out unless
        ``service_only`` is False)."""
        if not self.completed:
            return {}
        return {
            name: seconds / self.completed
            for name, seconds in self.cpu.items()
            if not (service_only and name == BENCH_PROCESS)
        }

    def busiest(self) -> tuple[str, float] | None:
        """The service process with the largest CPU share (of one core) in this phase."""
        shares = {
            name: seconds / self.wall
            for name, seconds in self.cpu.items()
            if name != BENCH_PROCESS and self.wall > 0
        }
        return max(shares.items(), key=lambda item: item[1]) if shares else None


class Phases:
    """Runs phases against one stack, measuring each."""

    def __init__(
        self,
        watch: ProcessWatch,
        progress: Progress,
        clock_zero: float,
        label: str,
    ) -> None:
        self._watch = watch
        self._progress = progress
        self._zero = clock_zero
        self._label = label

    async def _measured(
        self, title: str, total: int, body: Callable[[Callable[[], None]], Awaitable[T]]
    ) -> tuple[T, dict[str, float], float, float]:
        task = self._progress.add_task(f"{self._label} {title}", total=total)
        before = self._watch.cpu_seconds()
        started = time.monotonic() - self._zero
        result = await body(lambda: self._progress.advance(task))
        ended = time.monotonic() - self._zero
        cpu = cpu_delta(before, self._watch.cpu_seconds())
        self._progress.update(task, completed=total)
        return result, cpu, started, ended

    async def toy(self, client: Client, count: int) -> PhaseResult:
        """``count`` toy workflows started at once."""

        async def body(done: Callable[[], None]) -> toy.ToyRun:
            return await toy.run_toys(client, count, done)

        run, cpu, _, _ = await self._measured("toy workflows", count, body)
        started = run.started - self._zero
        completions = [c - self._zero for c in run.completed]
        ended = completions[-1]
        latencies = [c - run.started for c in run.completed]
        return PhaseResult(
            name="toy",
            kind="toy",
            mode="burst",
            clients=None,
            count=count,
            completed=len(completions),
            started=started,
            ended=ended,
            throughput=len(completions) / (ended - started),
            final=percentiles(latencies),
            cpu=cpu,
            peak_rss=self._watch.peak_rss(),
            completions=completions,
            final_samples=latencies,
        )

    async def closed(
        self, name: str, kind: str, count: int, clients: int, operation: Operation
    ) -> PhaseResult:
        async def body(done: Callable[[], None]) -> list[Sample]:
            return await closed_loop(count, clients, operation, done)

        title = f"{name} ({clients} client{'s' if clients > 1 else ''})"
        samples, cpu, _, _ = await self._measured(title, count, body)
        mode = "sequential" if clients == 1 else "closed"
        return self._result(name, kind, mode, clients, samples, cpu)

    async def open(
        self,
        name: str,
        kind: str,
        rate: float,
        seconds: float,
        arrivals: str,
        operation: Operation,
        limit: int = 1_000_000,
    ) -> PhaseResult:
        schedule = arrival_times(rate, seconds, arrivals, limit)

        async def body(done: Callable[[], None]) -> Any:
            return await open_loop(schedule, operation, done)

        title = f"{name} ({rate:.1f}/s for {seconds:g} s)"
        run, cpu, _, _ = await self._measured(title, len(schedule), body)
        result = self._result(name, kind, "open", None, run.samples, cpu)
        result.offered_rate = len(schedule) / schedule[-1] if schedule else None
        result.lag = percentiles(run.lags)
        return result

    def _result(
        self,
        name: str,
        kind: str,
        mode: str,
        clients: int | None,
        samples: Sequence[Sample],
        cpu: dict[str, float],
    ) -> PhaseResult:
        finished = [s for s in samples if s.finished_at is not None]
        started = min((s.sent for s in samples), default=0.0)
        ended = max((s.finished_at or 0.0 for s in finished), default=started)
        post = [s.post for s in samples if s.post is not None]
        final = [s.final for s in finished if s.final is not None]
        good = {"payment": "success", "refund": "processed"}[kind]
        return PhaseResult(
            name=name,
            kind=kind,
            mode=mode,
            clients=clients,
            count=len(samples),
            completed=len(finished),
            started=started,
            ended=ended,
            throughput=len(finished) / (ended - started) if ended > started else 0.0,
            post=percentiles(post),
            final=percentiles(final),
            synchronous=sum(s.synchronous for s in samples),
            errors=[f"#{s.index}: {s.error}" for s in samples if s.error],
            cpu=cpu,
            peak_rss=self._watch.peak_rss(),
            completions=sorted(s.finished_at for s in finished if s.finished_at is not None),
            post_samples=post,
            final_samples=final,
            ids=[s.entity_id for s in finished if s.entity_id and s.final_status == good],
        )
