"""The ``payments`` console command as an operator runs it: the installed script, in a process
of its own."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from devtools.processes import ProcessGroup, ProcessSpec
from devtools.stack import (
    find_temporal_cli,
    free_port,
    free_stack_settings,
    http_ready,
    settings_env,
)
from tests.replay.recorded import HISTORIES
from workflows.namespace_setup import registered_search_attributes
from workflows.search_attributes import SEARCH_ATTRIBUTES

PAYMENTS = str(Path(sys.executable).parent / "payments")
COMMANDS = [
    "dev",
    "api",
    "worker",
    "consumer",
    "sandbox",
    "db",
    "keys",
    "search-attributes",
    "reconcile",
    "replay",
    "fraud",
]


def payments(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PAYMENTS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def flowing(text: str) -> str:
    """A message as one line, out of the box and the line breaks the terminal width put in."""
    return " ".join(text.replace("│", " ").split())


def newest_history(name: str) -> Path:
    """The most recently recorded history of the path ``name``."""
    return max(HISTORIES.glob(f"*/{name}.json"), key=lambda path: path.stat().st_mtime)


def test_the_command_lists_every_process_and_task() -> None:
    shown = payments("--help")
    assert shown.returncode == 0, shown.stderr
    for command in COMMANDS:
        assert f" {command} " in shown.stdout, command
    assert payments("keys", "--help").returncode == 0
    nothing = payments()
    assert nothing.returncode != 0 and "Usage" in nothing.stdout + nothing.stderr


def test_replay_of_a_recorded_history_passes() -> None:
    replayed = payments("replay", "--file", str(newest_history("payment_success")))
    assert replayed.returncode == 0, replayed.stderr
    assert "replays" in replayed.stdout


def test_replay_reports_a_history_this_code_would_not_follow(tmp_path: Path) -> None:
    # The history of a run that charged through an activity this code does not have.
    history = json.loads(newest_history("payment_success").read_text())
    scheduled = [
        event["activityTaskScheduledEventAttributes"]
        for event in history["events"]
        if "activityTaskScheduledEventAttributes" in event
    ]
    assert scheduled, "the recorded payment scheduled no activity"
    scheduled[0]["activityType"]["name"] = "an_activity_no_version_had"
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(history))
    replayed = payments("replay", "--file", str(changed))
    assert replayed.returncode == 1
    assert "does NOT replay" in replayed.stderr


def test_replay_needs_one_source(tmp_path: Path) -> None:
    assert payments("replay").returncode == 2
    missing = payments("replay", "--file", str(tmp_path / "none.json"))
    assert missing.returncode == 2 and "is not a file" in flowing(missing.stderr)


@pytest.fixture
async def bare_dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server started without the service's attributes: a cluster before setup."""
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=find_temporal_cli())
    yield env
    await env.shutdown()


async def test_search_attributes_are_registered_once(
    bare_dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = bare_dev_server.client
    settings = free_stack_settings(tmp_path)
    env = {
        **settings_env(settings),
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
    }
    first = payments("search-attributes", env=env)
    assert first.returncode == 0, first.stderr
    assert "registered in default: AmountMinor, Currency" in first.stdout
    registered = await registered_search_attributes(client, client.namespace)
    assert registered is not None
    assert {key.name for key in SEARCH_ATTRIBUTES} <= set(registered)
    again = payments("search-attributes", env=env)
    assert again.returncode == 0, again.stderr
    assert "every search attribute is registered in default" in again.stdout


async def test_a_temporal_task_leaves_without_the_interpreters_teardown(
    bare_dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    # The Temporal client's threads can take the GIL while the interpreter finalizes, which
    # aborts a command that already answered (SIGABRT, about one run in twenty here). The
    # commands that use a client skip the teardown: an atexit hook never runs, the answer
    # and exit code stand.
    client = bare_dev_server.client
    env = {
        **os.environ,
        **settings_env(free_stack_settings(tmp_path)),
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
    }
    script = (
        "import atexit, sys\n"
        "from cli.main import app\n"
        "atexit.register(lambda: print('interpreter teardown ran'))\n"
        "app(['search-attributes'], prog_name='payments')\n"
    )
    ran = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert "registered in default" in ran.stdout
    assert "interpreter teardown ran" not in ran.stdout


def test_the_sandbox_starts_although_devtools_is_not_installed(tmp_path: Path) -> None:
    # A console script's import path holds neither the working directory nor devtools: the
    # command finds devtools in the checkout it was installed from.
    port = free_port()
    with ProcessGroup(tmp_path / "sandbox.log") as group:
        child = group.start(
            ProcessSpec(
                "sandbox",
                [PAYMENTS, "sandbox"],
                env={"SANDBOX_HOST": "127.0.0.1", "SANDBOX_PORT": str(port)},
                ready=http_ready(f"http://127.0.0.1:{port}/_sandbox/healthz"),
            )
        )
        # uvicorn shuts down, then re-raises the SIGTERM it got: as `python -m` does.
        assert child.stop() in (0, -signal.SIGTERM)
