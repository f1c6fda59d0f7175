"""``python -m benchmarks`` (``make bench``): what a user of the payment service feels, next to
what Temporal itself costs, in one run on one stack per database.

Phases (``--phases``, in this order):
- ``toy``: the baseline, N toy workflows of three no-op activities started at once on the
  stack's Temporal server (benchmarks.toy);
- ``saturation``: N payments through ``POST /initiate-payment`` from C concurrent clients, each
  sending its next payment when the previous one's final event is on ``payment_status``;
- ``open``: payments on a fixed schedule at half the saturation rate (Poisson arrivals);
- ``sync``: one client at a time with ``Prefer: wait=5`` (a 200 answer is final);
- ``refunds``: full refunds of the payments of each payment phase that ran, the same way,
  until the final event on ``refund_request``.

``--scaling``: the saturation phase for 1 and 2 worker processes x 8, 32 and 128 clients,
and which process saturates first. Writes JSON and a PNG chart under ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from temporalio.client import Client

from benchmarks import report
from benchmarks.finals import FinalEvents
from benchmarks.load import Operations
from benchmarks.measure import ProcessWatch
from benchmarks.phases import PhaseResult, Phases
from benchmarks.stack import DATABASES, TOY_WORKER, BenchStack, bench_stack, unavailable
from devtools.processes import StackError

PHASES = ("toy", "saturation", "open", "sync", "refunds")
SCALING_WORKERS = (1, 2)
SCALING_CLIENTS = (8, 32, 128)


@dataclass(frozen=True)
class Options:
    databases: list[str]
    phases: list[str]
    payments: int
    toys: int
    clients: list[int]
    workers: int
    open_seconds: float
    open_rate: float | None
    arrivals: str
    sync_count: int
    prefer_wait: int
    scaling: bool
    quick: bool


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--database",
        choices=DATABASES,
        action="append",
        help="repeatable; default: both (postgres skipped when unreachable)",
    )
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated, of {','.join(PHASES)} (default: all)",
    )
    parser.add_argument("--payments", type=int, help="payments in saturation (300; quick 40)")
    parser.add_argument("--toys", type=int, help="toy workflows started at once (300; quick 60)")
    parser.add_argument(
        "--clients",
        type=int,
        action="append",
        help="concurrent clients in saturation, repeatable (default 32; the "
        "first one sets the open loop's rate and the refunds' clients; "
        "--scaling: 8, 32, 128)",
    )
    parser.add_argument("--workers", type=int, default=1, help="payment worker processes")
    parser.add_argument(
        "--open-loop-seconds", type=float, help="length of the open loop (60; quick 10)"
    )
    parser.add_argument(
        "--open-rate",
        type=float,
        help="open loop's requests per second (default: half of saturation)",
    )
    parser.add_argument("--arrivals", choices=("poisson", "uniform"), default="poisson")
    parser.add_argument("--sync-count", type=int, help="payments in 'sync' (50; quick 10)")
    parser.add_argument(
        "--prefer-wait", type=int, default=5, help="seconds of the Prefer: wait header in 'sync'"
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="saturation for workers 1, 2 x clients 8, 32, 128 instead",
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    args = parser.parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    quick = args.quick
    default_clients = list(SCALING_CLIENTS) if args.scaling else [32]
    return Options(
        databases=args.database or list(DATABASES),
        phases=phases,
        payments=args.payments or (40 if quick else 300),
        toys=args.toys or (60 if quick else 300),
        clients=args.clients or default_clients,
        workers=args.workers,
        open_seconds=args.open_loop_seconds or (10.0 if quick else 60.0),
        open_rate=args.open_rate,
        arrivals=args.arrivals,
        sync_count=args.sync_count or (10 if quick else 50),
        prefer_wait=args.prefer_wait,
        scaling=args.scaling,
        quick=quick,
    )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )


def _say(text: str) -> None:
    print(text, flush=True)


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


async def _payments_and_refunds(
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
        run.results.append(
            await phases.closed(
                "refunds-sync",
                "refund",
                len(sync.ids),
                1,
                ops.refund(sync.ids, prefer_wait=options.prefer_wait),
            )
        )


async def _scaling_runs(
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
        service = sum(s for n, s in result.cpu.items() if n != "bench")
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


async def _measure(stack: BenchStack, options: Options) -> tuple[Run, list[dict[str, Any]]]:
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
                    rows = await _scaling_runs(run, options, api, finals)
                else:
                    await _payments_and_refunds(run, options, api, finals)
                    rows = []
        finally:
            await finals.stop()
    return run, rows


def _meta(options: Options, database: str, workers: int) -> dict[str, Any]:
    return {
        "database": database,
        "workers": workers,
        "git": report.git_describe(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "options": vars(options),
    }


def _report_run(run: Run, options: Options, stem: str) -> None:
    toy = next((p for p in run.results if p.kind == "toy"), None)
    peak = run.watch.peak_rss()
    checks = report.targets(run.results)
    json_path = report.RESULTS / f"{stem}.json"
    chart_path = report.RESULTS / f"{stem}.png"
    title = f"{run.stack.database}, {run.stack.workers} worker(s), {report.git_describe()}"
    report.write_json(
        json_path,
        {
            "meta": _meta(options, run.stack.database, run.stack.workers),
            "phases": run.results,
            "targets": checks,
            "peak_rss": peak,
            "cpu_timeline": run.watch.timeline,
        },
    )
    report.run_chart(chart_path, title, run.results, run.watch.timeline)
    _say(f"\n### {title}\n")
    _say(report.phase_table(run.results, toy.throughput if toy else None))
    _say("\nCPU ms per item by process (bench = the load generator, not the service):\n")
    _say(report.cpu_table(run.results, peak))
    if checks:
        _say("\nIssue 10's targets:\n" + report.targets_text(checks))
    for phase in run.results:
        if phase.errors:
            shown = "; ".join(phase.errors[:3])
            _say(f"\n{phase.name}: {len(phase.errors)} without a final status ({shown}...)")
    _say(f"\nwritten: {json_path}\n         {chart_path}")


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    # Our own lines and the progress bars; library chatter (Kafka admin) only when it matters.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    scaling_rows: list[dict[str, Any]] = []
    for database in options.databases:
        if reason := unavailable(database):
            _say(f"skipping {database}: {reason}")
            continue
        worker_counts = SCALING_WORKERS if options.scaling else (options.workers,)
        for workers in worker_counts:
            _say(f"\n== {database}, {workers} worker(s): starting the stack")
            stem = report.result_stem(database, "scaling" if options.scaling else "")
            try:
                with bench_stack(
                    database, workers, log_copy=report.RESULTS / f"{stem}.log"
                ) as stack:
                    run, rows = asyncio.run(_measure(stack, options))
            except StackError as exc:
                _say(f"   the stack failed: {exc} (log: {report.RESULTS / f'{stem}.log'})")
                return 1
            if options.scaling:
                scaling_rows += rows
                stem += f"-w{workers}"
            _report_run(run, options, stem)
    if scaling_rows:
        stem = report.result_stem("-".join(options.databases), "scaling")
        report.write_json(report.RESULTS / f"{stem}-table.json", {"rows": scaling_rows})
        report.scaling_chart(
            report.RESULTS / f"{stem}.png", "Payments/s by workers and clients", scaling_rows
        )
        _say("\n### Scaling (saturation, closed loop)\n")
        _say(report.scaling_table(scaling_rows))
        _say(f"\nwritten: {report.RESULTS / (stem + '-table.json')}, {stem}.png")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
