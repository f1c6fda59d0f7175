"""The sequence of phases on one stack: a normal run (toy, payments, refunds) or the scaling
runs (toy, then saturation for each number of clients), with the processes watched and the
final events read throughout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from temporalio.client import Client

from benchmarks.finals import FinalEvents
from benchmarks.load import Operations
from benchmarks.measure import BENCH_PROCESS, ProcessWatch
from benchmarks.options import Options
from benchmarks.phases import PhaseResult, Phases
from benchmarks.stack import TOY_WORKER, BenchStack
from devtools.sandbox.settings import SandboxSettings


def _say(text: str) -> None:
    print(text, flush=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )


class Run:
    """One stack's measurements: the processes watched, the reader of final events, the API
    client; each phase method appends its result."""

    def __init__(self, stack: BenchStack, watch: ProcessWatch, progress: Progress) -> None:
        self.stack = stack
        self.watch = watch
        self.phases = Phases(watch, progress, watch.zero, stack.database)
        self.results: list[PhaseResult] = []

    async def toy(self, count: int) -> PhaseResult:
        endpoints, settings = self.stack.endpoints, self.stack.settings
        client = await Client.connect(
            endpoints.temporal_address, namespace=settings.temporal.namespace
        )
        pid = await asyncio.to_thread(self.stack.start_toy_worker)
        self.watch.add(TOY_WORKER, pid)
        try:
            result = await self.phases.toy(client, count)
        finally:
            await asyncio.to_thread(self.stack.stop_toy_worker)
        self.results.append(result)
        return result


async def _quiet(wanted: Sequence[str], loads: Sequence[str] = ("saturation", "open")) -> None:
    """Measure on a stack that is done with the loads before: the sandbox tells the API of
    each sale's settlement SandboxSettings.settle_after_seconds after it was made, so the
    webhooks of a saturation run would still arrive, at twice the open loop's rate, during
    its first seconds; and one client measures what a lone user feels, on an idle stack."""
    if set(wanted) & set(loads):
        await asyncio.sleep(SandboxSettings().settle_after_seconds + 3.0)


async def payments_and_refunds(
    run: Run, options: Options, api: httpx.AsyncClient, finals: FinalEvents
) -> None:
    ops = Operations(api, finals, run.watch.zero)
    phases, wanted = run.phases, options.phases
    if "toy" in wanted:
        await run.toy(options.toys)
    main_clients = options.clients[0]
    saturation: PhaseResult | None = None
    if "saturation" in wanted:
        for clients in options.clients:
            name = "payments-saturation"
            if len(options.clients) > 1:
                name += f"-{clients}"
            result = await phases.closed(
                name, "payment", options.payments, clients, ops.payment(name)
            )
            run.results.append(result)
            if clients == main_clients:
                saturation = result
    open_loop: PhaseResult | None = None
    if "open" in wanted:
        rate = options.open_rate or (saturation.throughput / 2 if saturation else None)
        if not rate:
            _say("   skipping 'open': no saturation rate measured (give --open-rate)")
        else:
            await _quiet(wanted, loads=("saturation",))
            open_loop = await phases.open(
                "payments-open",
                "payment",
                rate,
                options.open_seconds,
                options.arrivals,
                ops.payment("open"),
            )
            run.results.append(open_loop)
    sync: PhaseResult | None = None
    if "sync" in wanted:
        await _quiet(wanted)
        sync = await phases.closed(
            "payments-sync",
            "payment",
            options.sync_count,
            1,
            ops.payment("sync", prefer_wait=options.prefer_wait),
        )
        run.results.append(sync)
    if "refunds" not in wanted:
        return
    refund_saturation: PhaseResult | None = None
    if saturation and saturation.ids:
        refund_saturation = await phases.closed(
            "refunds-saturation",
            "refund",
            len(saturation.ids),
            main_clients,
            ops.refund(saturation.ids),
        )
        run.results.append(refund_saturation)
    if open_loop and open_loop.ids:
        rate = refund_saturation.throughput / 2 if refund_saturation else open_loop.throughput
        if refund_saturation:
            await _quiet(wanted, loads=("saturation",))
        run.results.append(
            await phases.open(
                "refunds-open",
                "refund",
                rate,
                options.open_seconds,
                options.arrivals,
                ops.refund(open_loop.ids),
                limit=len(open_loop.ids),
            )
        )
    if sync and sync.ids:
        await _quiet(wanted)
        run.results.append(
            await phases.closed(
                "refunds-sync",
                "refund",
                len(sync.ids),
                1,
                ops.refund(sync.ids, prefer_wait=options.prefer_wait),
            )
        )


async def scaling_runs(
    run: Run, options: Options, api: httpx.AsyncClient, finals: FinalEvents
) -> list[dict[str, Any]]:
    ops = Operations(api, finals, run.watch.zero)
    toy = await run.toy(options.toys)
    rows: list[dict[str, Any]] = []
    for clients in options.clients:
        # At least a few rounds per client, else the ramp-up and the tail are all there is.
        count = max(options.payments, clients * (1 if options.quick else 2))
        name = f"saturation-w{run.stack.workers}-c{clients}"
        result = await run.phases.closed(name, "payment", count, clients, ops.payment(name))
        run.results.append(result)
        busiest = result.busiest() or ("-", 0.0)
        service = sum(s for n, s in result.cpu.items() if n != BENCH_PROCESS)
        rows.append(
            {
                "database": run.stack.database,
                "workers": run.stack.workers,
                "clients": clients,
                "completed": result.completed,
                "throughput": result.throughput,
                "toy_rate": toy.throughput,
                "ratio": result.throughput / toy.throughput,
                "post": result.post,
                "final": result.final,
                "busiest": busiest[0],
                "busiest_share": busiest[1],
                "service_share": service / result.wall if result.wall else 0.0,
                "cpu_share": {n: s / result.wall for n, s in result.cpu.items()},
            }
        )
    return rows


async def measure(stack: BenchStack, options: Options) -> tuple[Run, list[dict[str, Any]]]:
    with ProcessWatch(time.monotonic()) as watch, _progress() as progress:
        watch.add_all(stack.running())
        run = Run(stack, watch, progress)
        finals = FinalEvents(stack.endpoints.kafka_bootstrap)
        await finals.start()
        most = max(options.clients)
        try:
            async with httpx.AsyncClient(
                base_url=stack.endpoints.api_url,
                timeout=options.prefer_wait + 30.0,
                trust_env=False,
                headers={"Authorization": f"Bearer {stack.endpoints.api_keys['checkout']}"},
                limits=httpx.Limits(max_connections=most + 64, max_keepalive_connections=most),
            ) as api:
                if options.scaling:
                    rows = await scaling_runs(run, options, api, finals)
                else:
                    await payments_and_refunds(run, options, api, finals)
                    rows = []
        finally:
            await finals.stop()
    return run, rows
