"""The Temporal dev server as the stack starts it: argv, readiness, health, clean stop."""

from __future__ import annotations

import subprocess
from pathlib import Path

from devtools.processes import ProcessGroup, ProcessSpec
from devtools.stack import (
    command_ready,
    find_temporal_cli,
    free_port,
    port_is_free,
    temporal_dev_server_argv,
    temporal_health_argv,
)
from workflows.search_attributes import dev_server_flags

from .conftest import pid_alive


def test_argv_headless_in_memory() -> None:
    argv = temporal_dev_server_argv("127.0.0.1", 7300, None, None, cli="temporal")
    assert argv == [
        "temporal", "server", "start-dev", "--ip", "127.0.0.1", "--port", "7300",
        "--headless", *dev_server_flags(), "--log-level", "warn",
    ]  # fmt: skip


def test_argv_with_ui_and_wal_state() -> None:
    argv = temporal_dev_server_argv(
        "127.0.0.1", 7233, 8233, Path(".data/temporal.db"), cli="temporal",
        namespaces=["default", "payments"],
    )  # fmt: skip
    assert argv == [
        "temporal", "server", "start-dev", "--ip", "127.0.0.1", "--port", "7233",
        "--ui-port", "8233", "--ui-disable-news-fetch",
        "--db-filename", ".data/temporal.db",
        "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
        *dev_server_flags(),
        "--namespace", "payments",
        "--log-level", "warn",
    ]  # fmt: skip


def test_dev_server_starts_answers_health_and_stops(tmp_path: Path) -> None:
    cli = find_temporal_cli()
    port = free_port()
    address = f"127.0.0.1:{port}"
    with ProcessGroup(tmp_path / "temporal.log") as group:
        server = group.start(
            ProcessSpec(
                "temporal",
                temporal_dev_server_argv("127.0.0.1", port, None, None, cli=cli),
                ready=command_ready(temporal_health_argv(address, cli=cli)),
            )
        )
        health = subprocess.run(
            temporal_health_argv(address, cli=cli), capture_output=True, text=True, check=False
        )
        assert health.returncode == 0, health.stderr
        assert "SERVING" in health.stdout
        pid = server.pid
    assert not pid_alive(pid)
    assert server.returncode == 0  # stopped by SIGTERM, not killed
    assert port_is_free("127.0.0.1", port)
