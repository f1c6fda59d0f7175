"""Retries outside Temporal, in one place: waiting for a dependency at start-up (``make run``
starts everything at once, and a deployment may start the worker before Kafka answers) and the
consumer's transient failures. Temporal retries activities itself; nothing else loops by hand.

Built on stamina: exponential backoff with jitter, so that a fleet of processes restarted
together does not knock on the dependency in lockstep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

import stamina

T = TypeVar("T")

Retryable = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]


@overload
async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    on: Retryable,
    stop: None = None,
    give_up_after: float | None = None,
    wait_initial: float = 0.5,
    wait_max: float = 5.0,
) -> T: ...


@overload
async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    on: Retryable,
    stop: asyncio.Event,
    give_up_after: float | None = None,
    wait_initial: float = 0.5,
    wait_max: float = 5.0,
) -> T | None: ...


async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    on: Retryable,
    stop: asyncio.Event | None = None,
    give_up_after: float | None = None,
    wait_initial: float = 0.5,
    wait_max: float = 5.0,
) -> T | None:
    """``await operation()`` until it succeeds, retrying the failures that ``on`` names (an
    exception type, a tuple of them, or a predicate, which may log the failure).

    No limit on attempts. Gives up with the last failure once ``give_up_after`` seconds have passed
    (None: never), and returns None without another attempt once ``stop`` is set (a shutdown
    while waiting is not an error). Any other exception propagates at once.
    """
    async for attempt in stamina.retry_context(
        on=on,
        attempts=None,
        timeout=give_up_after,
        wait_initial=wait_initial,
        wait_max=wait_max,
        wait_jitter=wait_initial,
    ):
        if stop is not None and stop.is_set():
            return None
        with attempt:
            return await operation()
    raise AssertionError("unreachable: stamina retries until success or gives up by raising")
