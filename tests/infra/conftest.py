"""Fixtures for the infrastructure tests: a Tansu broker on a free port, process helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.processes import ProcessGroup, ProcessSpec
from devtools.stack import free_port, tansu_argv, tcp_ready


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody reaped counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="session")
def tansu_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Tansu broker for the whole session; its output goes to a log file."""
    port = free_port()
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with ProcessGroup(log) as group:
        group.start(
            ProcessSpec("kafka", tansu_argv("127.0.0.1", port), ready=tcp_ready("127.0.0.1", port))
        )
        yield f"127.0.0.1:{port}"
