"""A small process supervisor: children started in order, each ready before the next, their
output prefixed with their names, stopped in reverse order.

Each child runs in a session of its own: a terminal's Ctrl-C reaches the supervisor only, which
stops the children in order, and a stop reaches what a child started itself. Threads read the
output, not asyncio: the test stacks outlive each test's event loop, and an unread pipe blocks
its writer. POSIX only. A supervisor killed with SIGKILL leaves its children running; the next
``make run`` then reports their ports as busy.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from devtools import REPOSITORY_ROOT

SUPERVISOR_NAME = "devstack"


class StackError(Exception):
    """A problem the supervisor reports as one line, not as a traceback."""


@dataclass(frozen=True)
class ProcessSpec:
    """What to run. ``ready`` is polled until it returns True (None: started is ready)."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] | None = None
    ready_timeout: float = 30.0
    # Long enough for the Temporal dev server to flush SQLite (about 1.5 s here), short enough
    # that a hung child does not hold up Ctrl-C for long.
    stop_timeout: float = 5.0


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Child:
    """One started child. ``stopped`` once it was asked to stop: its exit is then no crash."""

    def __init__(self, spec: ProcessSpec, group: ProcessGroup) -> None:
        self.spec = spec
        self.stopped = False
        self._group = group
        self._swept = False
        self.popen = subprocess.Popen(
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **group.env, **spec.env},
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._pump, name=spec.name, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    @property
    def running(self) -> bool:
        return self.returncode is None

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            self._group.write(self.spec.name, raw.decode("utf-8", "replace").rstrip())

    def _signal_group(self, sig: signal.Signals) -> None:
        if not self._swept:  # once swept, the group's id may be someone else's
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send ``sig`` to the child's process group, SIGKILL after ``spec.stop_timeout``
        seconds; the exit code. What the child started in its group goes too."""
        self.stopped = True
        if self.running:
            self._signal_group(sig)
            try:
                self.popen.wait(self.spec.stop_timeout)
            except subprocess.TimeoutExpired:
                grace = f"{self.spec.stop_timeout:g} s after {sig.name}"
                self._group.write(self.spec.name, f"still running {grace}: SIGKILL")
                self._signal_group(signal.SIGKILL)
                self.popen.wait()
        self._signal_group(signal.SIGKILL)
        self._swept = True
        self._reader.join(2.0)  # a grandchild may still hold the pipe: not forever
        return self.popen.returncode


class ProcessGroup:
    """Children started in order, stopped in reverse order when the ``with`` block ends. Their
    output goes to stdout, or with timestamps to the file ``log``. For one controlling thread;
    async code calls ``start`` and ``stop`` through ``asyncio.to_thread``."""

    def __init__(self, log: Path | None = None) -> None:
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("a", encoding="utf-8") if log is not None else None
        self._lock = threading.Lock()
        self.children: dict[str, Child] = {}
        # devtools is not installed: children that import it find it through PYTHONPATH.
        paths = filter(None, [str(REPOSITORY_ROOT), os.environ.get("PYTHONPATH")])
        self.env = {"PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(paths)}

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()
        if self._log is not None:
            self._log.close()

    def __getitem__(self, name: str) -> Child:
        return self.children[name]

    def write(self, name: str, text: str) -> None:
        """One line of output, prefixed with the name of the child (or of the supervisor)."""
        stamp = time.strftime("%H:%M:%S ") if self._log else ""
        with self._lock, contextlib.suppress(OSError, ValueError):  # the terminal went away
            out = self._log or sys.stdout
            out.write(f"{stamp}{name:<8} | {text}\n")
            out.flush()

    def say(self, text: str) -> None:
        self.write(SUPERVISOR_NAME, text)

    def start(self, spec: ProcessSpec) -> Child:
        """Start ``spec`` (again, if it ran before) and wait until it is ready. StackError if
        it or an earlier child exits first, or after ``spec.ready_timeout`` seconds."""
        started = time.monotonic()
        if (previous := self.children.pop(spec.name, None)) is not None:
            previous.stop()  # started again: the new one moves to the end
        child = self.children[spec.name] = Child(spec, self)
        while spec.ready is not None and not spec.ready():
            crashed = self.crashed()
            if crashed is not None or time.monotonic() - started > spec.ready_timeout:
                child.stop()
                if crashed is None:
                    raise StackError(f"{spec.name} was not ready within {spec.ready_timeout:g} s")
                how = "before it was ready" if crashed is child else f"while {spec.name} started"
                raise StackError(
                    f"{crashed.spec.name} exited ({describe_exit(crashed.returncode)}) {how}"
                )
            time.sleep(0.1)
        took = f"ready in {time.monotonic() - started:.1f} s" if spec.ready else "started"
        self.say(f"{spec.name} {took} (pid {child.pid})")
        return child

    def run(self, spec: ProcessSpec, timeout: float = 120.0) -> None:
        """Run a one-shot command to its end; StackError unless it exits with 0."""
        child = self.children[spec.name] = Child(spec, self)
        try:
            code = child.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise StackError(f"{spec.name} did not finish within {timeout:g} s") from None
        finally:
            child.stop()
        if code != 0:
            raise StackError(f"{spec.name} failed ({describe_exit(code)})")
        self.say(f"{spec.name} done")

    def stop(self, name: str) -> int:
        return self.children[name].stop()

    def stop_all(self) -> None:
        """Stop every child, the most recently started first."""
        for child in reversed(list(self.children.values())):
            if child.running:
                self.say(f"stopping {child.spec.name}")
            child.stop()

    def crashed(self) -> Child | None:
        """The first child that exited without being asked to."""
        return next((c for c in self.children.values() if not (c.stopped or c.running)), None)

    def wait_for_crash(self) -> Child:
        while (crashed := self.crashed()) is None:
            time.sleep(0.2)
        return crashed
