"""Breaking a running stack on purpose: kill -9 one of its processes, start it again, freeze it.

The stack is a :class:`devtools.processes.ProcessGroup`; what is stopped here on purpose does
not count as a crash (``group.crashed()``).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

from devtools.processes import Child, ProcessGroup


def kill(group: ProcessGroup, name: str) -> None:
    """SIGKILL the child and everything in its process group at once, as ``kill -9`` does."""
    group[name].stop(signal.SIGKILL)


def terminate(group: ProcessGroup, name: str) -> int:
    """SIGTERM the child, as a process manager stops it, and wait for it to exit (SIGKILL after
    its spec's stop_timeout); its exit code."""
    return group[name].stop(signal.SIGTERM)


def restart(group: ProcessGroup, name: str) -> Child:
    """Stop ``name`` if it still runs, start it again with the same command and wait until it
    is ready."""
    child = group[name]
    child.stop()
    return group.start(child.spec)


@contextlib.contextmanager
def frozen(group: ProcessGroup, *names: str) -> Iterator[None]:
    """SIGSTOP these children (their whole process groups) for the block, SIGCONT after: they
    neither run nor notice anything meanwhile."""
    pids = [group[name].pid for name in names]
    for pid in pids:
        os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGCONT)
