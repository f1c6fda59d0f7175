"""The stack a benchmark runs against: what ``make run`` starts (devtools.stack.start_stack), on
free ports, in a temporary directory, with SQLite or a throwaway PostgreSQL database; and the
toy workflow's worker beside it.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devtools.postgres import create_postgres_database, drop_postgres_database, postgres_available
from devtools.processes import ProcessGroup, ProcessSpec
from devtools.stack import StackEndpoints, free_stack_settings, python_module_argv, start_stack
from payments.config import DatabaseSettings, Settings

DATABASES = ("sqlite", "postgres")
TOY_WORKER = "toy"


@dataclass(frozen=True)
class BenchStack:
    database: str
    workers: int
    settings: Settings
    endpoints: StackEndpoints
    group: ProcessGroup
    data_dir: Path

    def running(self) -> dict[str, int]:
        """The stack's processes now running, by name (not the one-shot migrate and keys)."""
        return {name: c.pid for name, c in self.group.children.items() if c.running}

    def start_toy_worker(self) -> int:
        """Start the toy's worker (ready once it polls); its pid."""
        ready_file = self.data_dir / "toy-worker.ready"
        argv = python_module_argv(
            "benchmarks.toy",
            "--address",
            self.endpoints.temporal_address,
            "--namespace",
            self.settings.temporal.namespace,
            "--ready-file",
            str(ready_file),
        )
        spec = ProcessSpec(TOY_WORKER, argv, ready=ready_file.exists, ready_timeout=60.0)
        return self.group.start(spec).pid

    def stop_toy_worker(self) -> None:
        self.group.stop(TOY_WORKER)


def unavailable(database: str) -> str | None:
    """Why ``database`` cannot be benchmarked here, or None."""
    return postgres_available() if database == "postgres" else None


@contextlib.contextmanager
def bench_stack(
    database: str, workers: int = 1, *, log_copy: Path | None = None
) -> Iterator[BenchStack]:
    """The whole stack, stopped (and its PostgreSQL database dropped) when the block ends. Its
    output goes to ``stack.log`` in a temporary directory, copied to ``log_copy`` at the end
    (the directory goes)."""
    with tempfile.TemporaryDirectory(prefix="payments-bench-") as tmp:
        data_dir = Path(tmp)
        dropper: str | None = None
        if database == "postgres":
            url, dropper = create_postgres_database("payments_bench")
        else:
            url = f"sqlite:///{data_dir / 'payments.db'}"
        settings = free_stack_settings(data_dir, database=DatabaseSettings(url=url))
        # One key sends everything: measure the service, not the per-key rate limit (100/s by
        # default, which a burst of concurrent clients reaches).
        settings.api.rate_limit = "100000/second"
        try:
            with ProcessGroup(data_dir / "stack.log") as group:
                endpoints = start_stack(group, settings, temporal_ui=False, workers=workers)
                yield BenchStack(database, workers, settings, endpoints, group, data_dir)
        finally:
            if dropper:
                drop_postgres_database(dropper)
            if log_copy is not None and (data_dir / "stack.log").exists():
                log_copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(data_dir / "stack.log", log_copy)
