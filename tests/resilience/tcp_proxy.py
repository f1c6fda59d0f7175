"""A small TCP proxy with an off switch, to make a server unreachable on purpose.

It runs its own asyncio loop on a thread, so it keeps forwarding while the test's loop is
busy or blocked (ProcessGroup calls are synchronous). ``cut()`` resets every open connection
and then, until ``restore()``:
- ``refuse`` (default): closes the listening socket, so new connections are refused
  (ECONNREFUSED), what a client sees when the server is down;
- ``blackhole``: accepts new connections and never answers, what a client sees when the
  server hangs or the network drops its packets (the client must time out by itself).
``restore()`` resets whatever was held, listens again on the same port and forwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

from devtools.stack import free_port

T = TypeVar("T")
Mode = Literal["forward", "refuse", "blackhole"]

_CHUNK = 65536


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = free_port(host)
        self.forwarded = 0  # connections forwarded
        self.reset = 0  # open connections reset by cut()
        self.held = 0  # connections accepted and never answered (blackhole)
        self._mode: Mode = "forward"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"tcp-proxy-{self.port}", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._blackholed: set[asyncio.StreamWriter] = set()

    # --- the controlling thread's side (thread-safe, synchronous)
    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._set_mode("forward"))
        return self

    def cut(self, mode: Literal["refuse", "blackhole"] = "refuse") -> None:
        """Reset every open connection; refuse (or blackhole) new ones until restore()."""
        self._call(self._set_mode(mode))

    def restore(self) -> None:
        self._call(self._set_mode("forward"))

    @property
    def mode(self) -> Mode:
        return self._mode

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._set_mode("refuse"))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the proxy's loop
    async def _set_mode(self, mode: Mode) -> None:
        if mode != "forward":
            self.reset += len(self._open)
            self._abort_all(self._open)
        if mode != "blackhole":
            self._abort_all(self._blackholed)
        if mode == "refuse":
            if self._server is not None:
                self._server.close()
                self._server = None
        elif self._server is None:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self._mode = mode

    @staticmethod
    def _abort_all(writers: set[asyncio.StreamWriter]) -> None:
        for writer in list(writers):
            writer.transport.abort()  # RST: the peer sees the connection die, not a clean end
        writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._mode == "blackhole":
            self.held += 1
            self._blackholed.add(writer)  # kept open, never read, never answered
            return
        if self._mode == "refuse":  # accepted a moment before the cut
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self.forwarded += 1
        pair = {writer, upstream_writer}
        self._open |= pair
        try:
            await asyncio.gather(
                self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
            )
        finally:
            self._open -= pair
            for side in pair:
                side.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
        # One side ended: end the other (after what is buffered), so both pipes finish.
        writer.close()
