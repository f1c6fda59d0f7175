"""The clients: one payment or refund as a user makes it (:class:`Operations`), and the three
ways of sending many (:func:`closed_loop`, :func:`open_loop`, one client = a closed loop of 1).

A sample's clock starts when its POST is sent and stops at its final event (or at the POST's
answer when that answer is a synchronous 200 with the final status): what the user waits for.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from benchmarks.finals import FINAL_PAYMENT, FINAL_REFUND, FinalEvents

# How long a payment or refund may take to reach its final status before the sample counts as
# unfinished: far beyond any target, short enough that a stuck run still ends.
FINAL_TIMEOUT = 120.0


@dataclass
class Sample:
    """One payment or refund. Times in seconds; ``sent`` on the benchmark's monotonic clock."""

    index: int
    sent: float
    post: float | None = None  # POST sent -> answer
    status_code: int | None = None
    entity_id: str | None = None  # payment_id or refund_id
    final: float | None = None  # POST sent -> final status known
    final_status: str | None = None
    synchronous: bool = False  # the answer itself was final (Prefer: wait)
    error: str | None = None

    @property
    def finished_at(self) -> float | None:
        return None if self.final is None else self.sent + self.final


Operation = Callable[[int], Awaitable[Sample]]


class Operations:
    """Payments and refunds through the API, each followed to its final event."""

    def __init__(self, api: httpx.AsyncClient, finals: FinalEvents, clock_zero: float) -> None:
        self._api = api
        self._finals = finals
        self._zero = clock_zero
        self._run = uuid.uuid4().hex[:8]

    def payment(self, phase: str, *, prefer_wait: int | None = None) -> Operation:
        """``POST /initiate-payment`` of a fresh order (a valid card: it succeeds)."""

        async def pay(index: int) -> Sample:
            body = {
                "order_id": f"bench-{self._run}-{phase}-{index}",
                "user_id": f"user-{index % 50}",
                "amount": "49.99",
                "currency": "USD",
                "payment_method": "credit_card",
                "payment_token": "fake-valid-nonce",
            }
            return await self._send(
                index, "/initiate-payment", body, "payment", "payment_id", prefer_wait
            )

        return pay

    def refund(self, payment_ids: Sequence[str], *, prefer_wait: int | None = None) -> Operation:
        """``POST /refund`` of the whole of ``payment_ids[index]`` (a void: none has settled)."""

        async def refund(index: int) -> Sample:
            body = {"payment_id": payment_ids[index], "reason": "benchmark"}
            return await self._send(index, "/refund", body, "refund", "refund_id", prefer_wait)

        return refund

    async def _send(
        self,
        index: int,
        path: str,
        body: dict[str, Any],
        kind: str,
        id_field: str,
        prefer_wait: int | None,
    ) -> Sample:
        headers = {"Prefer": f"wait={prefer_wait}"} if prefer_wait is not None else {}
        started = time.monotonic()
        sample = Sample(index, started - self._zero)
        try:
            response = await self._api.post(path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            sample.error = f"{type(exc).__name__}"
            return sample
        answered = time.monotonic()
        sample.post, sample.status_code = answered - started, response.status_code
        if response.status_code not in (200, 202):
            sample.error = f"HTTP {response.status_code}"
            return sample
        answer = response.json()
        sample.entity_id = answer[id_field]
        status = answer.get(f"{kind}_status")
        finals = FINAL_PAYMENT if kind == "payment" else FINAL_REFUND
        if response.status_code == 200 and status in finals:
            sample.final, sample.final_status, sample.synchronous = sample.post, status, True
            return sample
        final = await self._finals.wait(f"{kind}:{sample.entity_id}", FINAL_TIMEOUT)
        if final is None:
            sample.error = f"no final event within {FINAL_TIMEOUT:g} s"
        else:
            sample.final, sample.final_status = final.at - started, final.status
        return sample


Progress = Callable[[], None]


async def closed_loop(
    count: int, clients: int, operation: Operation, done: Progress
) -> list[Sample]:
    """``count`` operations from ``clients`` clients, each sending its next one as soon as its
    previous one is final: the saturation throughput."""
    indices = iter(range(count))
    samples: list[Sample] = []

    async def client() -> None:
        for index in indices:  # shared: each index goes to one client
            samples.append(await operation(index))
            done()

    await asyncio.gather(*(client() for _ in range(min(clients, count))))
    return sorted(samples, key=lambda s: s.index)


@dataclass
class OpenLoopResult:
    samples: list[Sample]
    # How late each request left against its schedule: a large lag means the benchmark
    # itself could not keep up, and the latencies say less.
    lags: list[float]


def arrival_times(
    rate: float, seconds: float, arrivals: str, limit: int, seed: int = 10
) -> list[float]:
    """When each request is due (seconds from the start): every 1/``rate`` s (``uniform``),
    or a Poisson process of that mean rate (``poisson``, seeded: the same schedule every run);
    at most ``limit`` of them."""
    gaps = random.Random(seed)
    times: list[float] = []
    at = 0.0
    while len(times) < limit:
        if arrivals == "poisson":
            at += gaps.expovariate(rate)
        else:
            at = (len(times) + 1) / rate  # not a running sum: no rounding drift
        if at > seconds + 1e-9:
            break
        times.append(at)
    return times


async def open_loop(
    schedule: Sequence[float], operation: Operation, done: Progress
) -> OpenLoopResult:
    """One operation at each time of ``schedule``, without waiting for earlier ones: what a
    service sees from many independent users."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    lags: list[float] = []
    tasks: list[asyncio.Task[Sample]] = []

    async def tracked(index: int) -> Sample:
        sample = await operation(index)
        done()
        return sample

    for index, due in enumerate(schedule):
        if (delay := start + due - loop.time()) > 0:
            await asyncio.sleep(delay)
        lags.append(loop.time() - start - due)
        tasks.append(asyncio.create_task(tracked(index)))
    return OpenLoopResult(list(await asyncio.gather(*tasks)), lags)
