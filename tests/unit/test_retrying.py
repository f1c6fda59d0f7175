"""The one retry helper outside Temporal: retries what it is told to, gives up when told to."""

from __future__ import annotations

import asyncio
import time

import pytest

from payments.retrying import retrying


class Flaky:
    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


async def test_retries_the_named_failures_until_success() -> None:
    flaky = Flaky(3, ConnectionError("refused"))
    assert await retrying(flaky, on=ConnectionError, wait_initial=0.01, wait_max=0.02) == "done"
    assert flaky.calls == 4


async def test_an_operation_that_returns_nothing_is_a_success() -> None:
    calls: list[int] = []

    async def publish() -> None:
        calls.append(1)

    await retrying(publish, on=ConnectionError)
    assert calls == [1]


async def test_anything_else_propagates_at_once() -> None:
    flaky = Flaky(3, ValueError("misconfigured"))
    with pytest.raises(ValueError, match="misconfigured"):
        await retrying(flaky, on=ConnectionError, wait_initial=0.01)
    assert flaky.calls == 1


async def test_a_predicate_decides_and_sees_each_failure() -> None:
    seen: list[str] = []

    def transient(exc: Exception) -> bool:
        seen.append(str(exc))
        return isinstance(exc, ConnectionError)

    flaky = Flaky(2, ConnectionError("refused"))
    assert await retrying(flaky, on=transient, wait_initial=0.01) == "done"
    assert seen == ["refused", "refused"]


async def test_gives_up_with_the_last_failure_after_the_deadline() -> None:
    flaky = Flaky(10_000, ConnectionError("still refused"))
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="still refused"):
        await retrying(
            flaky, on=ConnectionError, give_up_after=0.3, wait_initial=0.01, wait_max=0.05
        )
    assert time.monotonic() - started < 2
    assert flaky.calls > 1


async def test_a_stop_ends_the_wait_without_an_error() -> None:
    stop = asyncio.Event()
    flaky = Flaky(10_000, ConnectionError("refused"))
    asyncio.get_running_loop().call_later(0.2, stop.set)
    assert await retrying(flaky, on=ConnectionError, stop=stop, wait_initial=0.01) is None
