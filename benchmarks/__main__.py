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

import asyncio
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from typing import Any

import structlog

from benchmarks import report
from benchmarks.options import Options, parse
from benchmarks.runs import Run, measure
from benchmarks.stack import bench_stack, unavailable
from devtools.processes import StackError


def _say(text: str) -> None:
    print(text, flush=True)


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
        for workers in options.workers:
            _say(f"\n== {database}, {workers} worker(s): starting the stack")
            stem = report.result_stem(database, "scaling" if options.scaling else "")
            try:
                with bench_stack(
                    database, workers, log_copy=report.RESULTS / f"{stem}.log"
                ) as stack:
                    run, rows = asyncio.run(measure(stack, options))
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
