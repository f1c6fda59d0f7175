"""Serving the development servers (the gateway sandbox, the local Order Service): binding the
port, and running an app on a background thread.

The socket is bound here rather than by uvicorn so that a busy port is reported as one clear
line (their ``main()``) and so that tests can bind port 0 and learn the port before serving.
"""

from __future__ import annotations

import errno
import socket
import sys
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

STARTUP_TIMEOUT_SECONDS = 10.0


class PortInUse(OSError):
    """Something already listens on the port a server was to bind."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"port {port} on {host} is already in use")
        self.host = host
        self.port = port


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (0 picks a free port). Raises PortInUse if taken."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    # Like uvicorn: a restarted sandbox must not wait for the old connections' TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port) from None
        raise
    sock.set_inheritable(True)
    return sock


def bind_or_explain(host: str, port: int, setting: str) -> socket.socket | None:
    """For a server's ``main()``: the bound socket, or None after printing one clear line
    (a busy port names the setting that moves it)."""
    try:
        return bind_socket(host, port)
    except PortInUse:
        print(f"port {port} on {host} is already in use (set {setting})", file=sys.stderr)
    except OSError as exc:
        print(f"cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
    return None


def print_setting_errors(exc: ValidationError) -> None:
    """One line per invalid setting, no stack trace: a configuration mistake."""
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        print(f"invalid setting {location}: {error['msg']}", file=sys.stderr)


class BackgroundServer:
    """An app (the sandbox's, the Order Service's) served by uvicorn on a daemon thread, for
    tests and local harnesses.

    Usage: ``with BackgroundServer(app) as server: ... server.port ...``.
    """

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._socket = bind_socket(host, port)
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        self._server = uvicorn.Server(
            # lifespan on: the app's background work (webhook deliveries) runs with it.
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        )
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"server-{self.port}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._socket.close()
                raise RuntimeError(f"sandbox on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=STARTUP_TIMEOUT_SECONDS)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
