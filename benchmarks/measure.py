"""What the benchmarks measure besides latency: CPU seconds and memory of the stack's processes
(psutil), and the percentiles every table shows.

A process is counted with everything it started (``temporal server start-dev`` and the brokers
may fork): CPU is the user + system time of the live tree plus what its reaped children used.
CPU is read at each phase's start and end (:meth:`ProcessWatch.cpu_seconds`); a thread samples
it and the resident memory every ``interval`` seconds for the peaks and the chart's timeline.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import psutil

# The benchmark's own process: counted alone, not with its children (the stack's processes,
# which the supervisor inside it started, are counted under their own names).
BENCH_PROCESS = "bench"


def percentiles(values: Sequence[float]) -> dict[str, float] | None:
    """p50/p95/p99/max by the nearest-rank method (a p99 is a value that was measured), in the
    unit of ``values``; None without values."""
    if not values:
        return None
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99), "max": ordered[-1]}


def _tree(process: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return [process, *process.children(recursive=True)]
    return [process]


@dataclass
class _Watched:
    process: psutil.Process
    with_children: bool
    # The last readings, kept when the process is gone (a worker stopped mid-run).
    cpu: float = 0.0
    rss: int = 0
    peak_rss: int = 0

    def read(self) -> tuple[float, int]:
        cpu, rss = 0.0, 0
        members = _tree(self.process) if self.with_children else [self.process]
        alive = False
        for member in members:
            try:
                with member.oneshot():
                    times = member.cpu_times()
                    cpu += times.user + times.system
                    if member is self.process and self.with_children:  # reaped children
                        cpu += times.children_user + times.children_system
                    rss += member.memory_info().rss
                alive = True
            except psutil.Error:
                continue  # exited between listing and reading
        if alive:
            self.cpu, self.rss = cpu, rss
            self.peak_rss = max(self.peak_rss, rss)
        return self.cpu, self.rss


@dataclass
class Timeline:
    """CPU seconds (cumulative) by process every sampling interval: the chart's CPU panel."""

    times: list[float] = field(default_factory=list)
    cpu: dict[str, list[float]] = field(default_factory=dict)


class ProcessWatch:
    """The named processes' CPU and memory, sampled on a thread while the ``with`` block runs.
    ``clock`` is the benchmark's monotonic zero, so that the timeline lines up with the
    latency samples."""

    def __init__(self, clock_zero: float, interval: float = 0.5) -> None:
        self.zero = clock_zero
        self._interval = interval
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="process-watch", daemon=True)
        self.timeline = Timeline()
        self.add(BENCH_PROCESS, os.getpid(), with_children=False)

    def add(self, name: str, pid: int, *, with_children: bool = True) -> None:
        with self._lock, contextlib.suppress(psutil.Error):
            self._watched[name] = _Watched(psutil.Process(pid), with_children)

    def add_all(self, pids: Mapping[str, int]) -> None:
        for name, pid in pids.items():
            self.add(name, pid)

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds each process (tree) has used so far."""
        with self._lock:
            return {name: watched.read()[0] for name, watched in self._watched.items()}

    def peak_rss(self) -> dict[str, int]:
        """The largest resident set (bytes, the tree's sum) seen for each process so far."""
        with self._lock:
            return {name: watched.peak_rss for name, watched in self._watched.items()}

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            now = time.monotonic() - self.zero
            readings = self.cpu_seconds()
            self.timeline.times.append(now)
            for name, cpu in readings.items():
                series = self.timeline.cpu.setdefault(name, [])
                # A process added later starts with its first reading repeated (no CPU drawn
                # before it was watched), to keep the lengths equal.
                series.extend([cpu] * (len(self.timeline.times) - 1 - len(series)))
                series.append(cpu)


def cpu_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds used between two readings, by process (one that appeared in between counts
    from zero)."""
    return {name: after[name] - before.get(name, 0.0) for name in after}
