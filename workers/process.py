"""What every worker process does around its work: read the settings, configure logging, and
turn SIGINT and SIGTERM into a stop event that the work watches to drain and return."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

import uvloop

from payments.config import Settings, get_settings
from payments.heap import freeze_startup_heap
from payments.logging import configure_logging
from payments.tracing import configure_tracing

Run = Callable[[Settings, asyncio.Event], Awaitable[None]]


def run_process(name: str, run: Run) -> None:
    """The entry point of the process ``name`` (as its log lines name it): ``run`` until it
    returns, which it does soon after its stop event is set."""
    settings = get_settings()
    configure_logging(settings.log, process=name)
    configure_tracing(settings.tracing, process=name)
    freeze_startup_heap()  # the modules: most of what the process holds until it ends
    # uvloop: cheaper wake-ups from the activity threads to the loop (each sync activity's end
    # is one), and cheaper sockets.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_until_signalled(run, settings))


async def _until_signalled(run: Run, settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run(settings, stop)
