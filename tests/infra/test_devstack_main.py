"""``python -m devtools.devstack`` (make run): port checks, start-up, Ctrl-C/SIGTERM, crashes."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import REPOSITORY_ROOT
from devtools.processes import StackError
from devtools.sandbox.settings import SandboxSettings
from devtools.stack import (
    check_ports,
    free_port,
    free_stack_settings,
    port_is_free,
    stack_env,
    stack_ports,
)
from payments.config import KafkaSettings, LogSettings, Settings

from .conftest import pid_alive

RUNNER = str(Path(__file__).with_name("run_devstack_with_stubs.py"))
_PID_LINE = re.compile(r"devstack \| (\S+) (?:ready in [\d.]+ s|started) \(pid (\d+)\)")


def _free_ports_env() -> dict[str, str]:
    return {
        "API_HOST": "127.0.0.1",
        "API_PORT": str(free_port()),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "TEMPORAL_UI_PORT": str(free_port()),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "BRAINTREE_LOCAL_HOST": "127.0.0.1",
        "BRAINTREE_LOCAL_PORT": str(free_port()),
        "BRAINTREE_ENVIRONMENT": "local",
        # The supervisor runs in a temporary directory: devtools is not installed.
        "PYTHONPATH": str(REPOSITORY_ROOT),
    }


@pytest.fixture
def listener() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _devstack_refuses_to_start(cwd: Path, env: dict[str, str]) -> list[str]:
    """``make run`` in ``cwd`` with ``env``, expected to exit 1 at once: its stderr lines."""
    result = subprocess.run(
        [sys.executable, "-m", "devtools.devstack"],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""  # no child was started, not even the migration
    assert not (cwd / ".data").exists()
    return result.stderr.splitlines()


def test_a_busy_port_is_one_line_and_exit_1_before_anything_starts(
    tmp_path: Path, listener: int
) -> None:
    env = {**_free_ports_env(), "API_PORT": str(listener)}
    assert _devstack_refuses_to_start(tmp_path, env) == [
        f"devstack: port {listener} on 127.0.0.1 is already in use: "
        "stop what runs there or set API_PORT"
    ]
    for name in ("TEMPORAL_UI_PORT", "BRAINTREE_LOCAL_PORT"):
        assert port_is_free("127.0.0.1", int(env[name]))


@pytest.mark.parametrize(
    ("group", "field", "setting"),
    [
        ("temporal", "address", "TEMPORAL_ADDRESS"),
        ("temporal", "ui_port", "TEMPORAL_UI_PORT"),
        ("kafka", "bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS"),
        ("gateway", "local_port", "BRAINTREE_LOCAL_PORT"),
    ],
)
def test_each_port_names_its_setting(
    tmp_path: Path, listener: int, group: str, field: str, setting: str
) -> None:
    settings = free_stack_settings(tmp_path)
    value: object = (
        f"127.0.0.1:{listener}" if field in ("address", "bootstrap_servers") else listener
    )
    part = getattr(settings, group).model_copy(update={field: value})
    settings = settings.model_copy(update={group: part})
    with pytest.raises(StackError) as busy:
        check_ports(stack_ports(settings))
    assert str(busy.value) == (
        f"port {listener} on 127.0.0.1 is already in use: stop what runs there or set {setting}"
    )


def test_the_same_port_twice_is_reported(tmp_path: Path) -> None:
    settings = free_stack_settings(tmp_path)
    settings = settings.model_copy(
        update={"gateway": settings.gateway.model_copy(update={"local_port": settings.api.port})}
    )
    with pytest.raises(StackError, match=r"configured for both API \(API_PORT\) and sandbox"):
        check_ports(stack_ports(settings))


def test_the_default_ports_are_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*_free_ports_env(), "TEMPORAL_UI_PORT"):
        monkeypatch.delenv(name, raising=False)
    claims = {c.setting: (c.host, c.port) for c in stack_ports(Settings())}
    assert claims == {
        "API_PORT": ("127.0.0.1", 8000),
        "TEMPORAL_ADDRESS": ("127.0.0.1", 7233),
        "TEMPORAL_UI_PORT": ("127.0.0.1", 8233),
        "KAFKA_BOOTSTRAP_SERVERS": ("127.0.0.1", 9092),
        "BRAINTREE_LOCAL_PORT": ("127.0.0.1", 8090),
    }


class _Supervisor:
    """The devstack (with stub services) as a subprocess whose output lines can be awaited."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, RUNNER],
            cwd=cwd,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None and self._queue.empty():
                    break
                continue
            self.lines.append(line)
            if text in line:
                return
        raise AssertionError(f"no line with {text!r}; output:\n" + "\n".join(self.lines))

    def drain(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout)
        time.sleep(0.1)
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return code

    @property
    def child_pids(self) -> dict[str, int]:
        return {m[1]: int(m[2]) for line in self.lines if (m := _PID_LINE.search(line))}

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in self.child_pids.values():
            if pid_alive(pid):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[tuple[_Supervisor, dict[str, str]]]:
    env = _free_ports_env()
    running = _Supervisor(tmp_path, env)
    try:
        yield running, env
    finally:
        running.cleanup()


def _assert_all_stopped(running: _Supervisor, env: dict[str, str]) -> None:
    assert not [name for name, pid in running.child_pids.items() if pid_alive(pid)]
    for name in ("API_PORT", "TEMPORAL_UI_PORT", "BRAINTREE_LOCAL_PORT"):
        assert port_is_free("127.0.0.1", int(env[name])), name
    for name in ("TEMPORAL_ADDRESS", "KAFKA_BOOTSTRAP_SERVERS"):
        assert port_is_free("127.0.0.1", int(env[name].rsplit(":", 1)[1])), name


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_starts_everything_in_order_and_a_signal_stops_it_with_exit_0(
    supervisor: tuple[_Supervisor, dict[str, str]], tmp_path: Path, signum: signal.Signals
) -> None:
    running, env = supervisor
    running.wait_for("press Ctrl-C to stop everything")
    output = "\n".join(running.lines)
    assert list(running.child_pids) == ["temporal", "kafka", "sandbox", "worker", "consumer", "api"]
    assert output.index("migrate done") < output.index("temporal ready")
    assert "Kafka topics ready: payment_initiation, payment_status, refund_request" in output
    assert f"http://127.0.0.1:{env['API_PORT']}/docs" in output
    assert f"Temporal UI     http://127.0.0.1:{env['TEMPORAL_UI_PORT']}" in output
    assert (tmp_path / ".data" / "temporal.db").exists()

    running.process.send_signal(signum)
    assert running.drain() == 0
    assert "stopping (signal received)" in "\n".join(running.lines)
    _assert_all_stopped(running, env)


def test_a_child_that_dies_stops_the_rest_with_exit_1(
    supervisor: tuple[_Supervisor, dict[str, str]],
) -> None:
    running, env = supervisor
    running.wait_for("press Ctrl-C to stop everything")
    os.kill(running.child_pids["worker"], signal.SIGKILL)
    assert running.drain() == 1
    assert "worker exited unexpectedly (killed by SIGKILL); stopping the rest" in "\n".join(
        running.lines
    )
    _assert_all_stopped(running, env)


def test_children_get_the_same_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = free_stack_settings(
        tmp_path,
        kafka=KafkaSettings(topic_prefix="e2e.", partitions=2, bootstrap_servers="127.0.0.1:1"),
        log=LogSettings(LOG_JSON=True, level="DEBUG"),
    )
    for name in list(os.environ):
        if name.startswith(("API_", "TEMPORAL_", "KAFKA_", "SANDBOX_", "BRAINTREE_", "DATABASE_")):
            monkeypatch.delenv(name)
    env = stack_env(settings, SandboxSettings(settle_after_seconds=0.5))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == settings
    # The sandbox listens where the service's gateway looks, and sends its webhooks to this
    # stack's API.
    sandbox = SandboxSettings()
    assert (sandbox.host, sandbox.port) == (
        settings.gateway.local_host,
        settings.gateway.local_port,
    )
    assert sandbox.settle_after_seconds == 0.5
    assert sandbox.webhook_url == f"http://127.0.0.1:{settings.api.port}/webhooks/braintree"


def test_invalid_configuration_is_one_line_without_the_value(tmp_path: Path) -> None:
    env = {**_free_ports_env(), "API_PORT": "eighty"}
    assert _devstack_refuses_to_start(tmp_path, env) == [
        "devstack: invalid configuration: ApiSettings.port: "
        "Input should be a valid integer, unable to parse string as an integer"
    ]
