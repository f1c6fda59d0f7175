"""What a run leaves: Markdown tables on stdout (pasteable into the README), a JSON file of
every figure and sample, and a PNG chart, under ``bench/results/``."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display here

import matplotlib.pyplot as plt  # after choosing the backend

from benchmarks.measure import BENCH_PROCESS, Timeline
from benchmarks.phases import PhaseResult
from devtools import REPOSITORY_ROOT

RESULTS = REPOSITORY_ROOT / "bench" / "results"

# Issue 10's targets (ratios and latencies in one run on the 2-core machine).
TARGET_RATIO = 1.0
TARGET_OPEN_POST_P99 = 0.100
TARGET_OPEN_FINAL_P99 = 1.0
TARGET_SYNC_FINAL_P50 = 0.150


def git_describe() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPOSITORY_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def result_stem(database: str, kind: str = "") -> str:
    """``20261205-143000-sqlite-<describe>`` (``-scaling-`` before the database for scaling)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{kind + '-' if kind else ''}{database}-{git_describe()}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def _triple(figures: Mapping[str, float] | None) -> str:
    if figures is None:
        return "-"
    return " / ".join(_ms(figures[p]) for p in ("p50", "p95", "p99"))


def phase_table(phases: Sequence[PhaseResult], toy_rate: float | None) -> str:
    """One row per phase: throughput (and its ratio to the toy), latencies in ms."""
    lines = [
        "| phase | load | done | per s | x toy | POST p50 / p95 / p99 ms "
        "| to final p50 / p95 / p99 ms | sync 200 | service CPU ms each | busiest (of 1 core) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for phase in phases:
        if phase.mode == "open":
            load = f"open {phase.offered_rate or 0:.1f}/s"
        elif phase.mode == "burst":
            load = f"{phase.count} at once"
        else:
            load = f"{phase.clients} client{'s' if phase.clients != 1 else ''}"
        ratio = f"{phase.throughput / toy_rate:.2f}" if toy_rate and phase.kind != "toy" else "-"
        cpu = sum(phase.cpu_per_item().values())
        busiest = phase.busiest()
        lines.append(
            f"| {phase.name} | {load} | {phase.completed}/{phase.count} "
            f"| {phase.throughput:.1f} | {ratio} | {_triple(phase.post)} | {_triple(phase.final)} "
            f"| {phase.synchronous if phase.kind != 'toy' else '-'} | {cpu * 1000:.0f} "
            f"| {f'{busiest[0]} {busiest[1]:.0%}' if busiest else '-'} |"
        )
    return "\n".join(lines)


def cpu_table(phases: Sequence[PhaseResult], peak_rss: Mapping[str, int]) -> str:
    """CPU milliseconds per item by process for each phase, and each process's peak RSS."""
    names = sorted({n for p in phases for n in p.cpu}, key=lambda n: (n == BENCH_PROCESS, n))
    lines = [
        "| process | " + " | ".join(p.name for p in phases) + " | peak RSS MB |",
        "|---|" + "---|" * (len(phases) + 1),
    ]
    for name in names:
        cells = []
        for phase in phases:
            seconds = phase.cpu.get(name)
            each = seconds / phase.completed if seconds is not None and phase.completed else None
            cells.append(_ms(each))
        rss = peak_rss.get(name)
        mb = f"{rss / 2**20:.0f}" if rss else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mb} |")
    totals = [f"{sum(p.cpu_per_item().values()) * 1000:.0f}" for p in phases]
    lines.append("| **all service processes** | " + " | ".join(totals) + " | |")
    return "\n".join(lines)


def _find(phases: Sequence[PhaseResult], name: str) -> PhaseResult | None:
    return next((p for p in phases if p.name == name), None)


def targets(phases: Sequence[PhaseResult]) -> list[dict[str, Any]]:
    """Issue 10's targets against this run's figures (those the run measured)."""
    checks: list[dict[str, Any]] = []

    def check(what: str, value: float | None, limit: float, *, at_least: bool = False) -> None:
        if value is None:
            return
        met = value >= limit if at_least else value <= limit
        checks.append({"target": what, "value": value, "limit": limit, "met": met})

    toy = _find(phases, "toy")
    saturation = _find(phases, "payments-saturation")
    if toy and saturation:
        check(
            "payments/s ÷ toy workflows/s",
            saturation.throughput / toy.throughput,
            TARGET_RATIO,
            at_least=True,
        )
        toy_cpu = sum(toy.cpu_per_item().values())
        payment_cpu = sum(saturation.cpu_per_item().values())
        check("CPU s per payment ÷ per toy", payment_cpu / toy_cpu if toy_cpu else None, 1.0)
    if (open_loop := _find(phases, "payments-open")) is not None:
        check("open loop POST p99 (s)", (open_loop.post or {}).get("p99"), TARGET_OPEN_POST_P99)
        check(
            "open loop POST to final p99 (s)",
            (open_loop.final or {}).get("p99"),
            TARGET_OPEN_FINAL_P99,
        )
    if (sync := _find(phases, "payments-sync")) is not None:
        check(
            "one client, Prefer: wait=5, POST to final p50 (s)",
            (sync.final or {}).get("p50"),
            TARGET_SYNC_FINAL_P50,
        )
    return checks


def targets_text(checks: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(
        f"- {'met' if c['met'] else 'NOT met'}: {c['target']} = {c['value']:.3g} "
        f"(target {'≥' if 'toy' in c['target'] and 'CPU' not in c['target'] else '≤'} "
        f"{c['limit']:g})"
        for c in checks
    )


def write_json(path: Path, content: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1, default=_jsonable) + "\n")


def _jsonable(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def _cdf(ax: Any, values: Sequence[float], label: str) -> None:
    if not values:
        return
    ordered = sorted(v * 1000 for v in values)
    ax.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=label)


def run_chart(path: Path, title: str, phases: Sequence[PhaseResult], timeline: Timeline) -> None:
    """Latency CDFs (POST; POST to final), completions per second over the run, and each
    process's CPU (share of one core) over the run."""
    fig, ((post_ax, final_ax), (rate_ax, cpu_ax)) = plt.subplots(2, 2, figsize=(15, 10))
    fig.suptitle(title)
    for phase in phases:
        if phase.kind != "toy":
            _cdf(post_ax, phase.post_samples, phase.name)
        _cdf(final_ax, phase.final_samples, phase.name)
    for ax, what in ((post_ax, "POST latency"), (final_ax, "POST (toy: start) to final")):
        ax.set_xscale("log")
        ax.set_xlabel(f"{what}, ms (log)")
        ax.set_ylabel("fraction of requests")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")

    for phase in phases:
        if not phase.completions:
            continue
        first, last = math.floor(phase.started), math.ceil(phase.completions[-1])
        bins = list(range(first, last + 1))
        counts = [0] * max(1, len(bins) - 1)
        for at in phase.completions:
            counts[min(len(counts) - 1, max(0, int(at) - first))] += 1
        rate_ax.step(bins[: len(counts)], counts, where="post", label=phase.name)
    rate_ax.set_xlabel("seconds since the run began")
    rate_ax.set_ylabel("completions per second")
    rate_ax.grid(True, alpha=0.3)
    rate_ax.legend(fontsize="small")

    times, window = timeline.times, 4  # samples per point: 2 s at the 0.5 s sampling
    for name, series in sorted(timeline.cpu.items()):
        if len(series) <= window or series[-1] < 1.0:
            continue  # a process that hardly ran draws nothing useful
        points = range(window, len(series))
        shares = [
            100 * (series[i] - series[i - window]) / (times[i] - times[i - window]) for i in points
        ]
        cpu_ax.plot([times[i] for i in points], shares, label=name, linewidth=0.9)
    for number, phase in enumerate(phases):
        cpu_ax.axvspan(phase.started, phase.ended, alpha=0.04 + 0.05 * (number % 2), color="grey")
        cpu_ax.text(phase.started, 1, phase.name, rotation=90, fontsize="x-small", va="bottom")
    cpu_ax.set_xlabel("seconds since the run began")
    cpu_ax.set_ylabel("CPU, % of one core (2 s average)")
    cpu_ax.grid(True, alpha=0.3)
    cpu_ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def scaling_table(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "| database | workers | clients | payments | per s | x toy | POST p50 / p99 ms "
        "| to final p50 / p99 ms | busiest process (of 1 core) | all service CPU (of 2 cores) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        post, final = row["post"] or {}, row["final"] or {}
        lines.append(
            f"| {row['database']} | {row['workers']} | {row['clients']} | {row['completed']} "
            f"| {row['throughput']:.1f} | {row['ratio']:.2f} "
            f"| {_ms(post.get('p50'))} / {_ms(post.get('p99'))} "
            f"| {_ms(final.get('p50'))} / {_ms(final.get('p99'))} "
            f"| {row['busiest']} {row['busiest_share']:.0%} | {row['service_share'] / 2:.0%} |"
        )
    return "\n".join(lines)


def scaling_chart(path: Path, title: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Payments per second against concurrent clients, a line per database and worker count,
    each point labelled with the busiest process."""
    fig, ax = plt.subplots(figsize=(9, 6))
    series: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for row in rows:
        series.setdefault((row["database"], row["workers"]), []).append(row)
    for (database, workers), points in sorted(series.items()):
        xs = [p["clients"] for p in points]
        ys = [p["throughput"] for p in points]
        ax.plot(xs, ys, marker="o", label=f"{database}, {workers} worker(s)")
        for p in points:
            ax.annotate(
                f"{p['busiest']} {p['busiest_share']:.0%}",
                (p["clients"], p["throughput"]),
                fontsize="x-small",
                textcoords="offset points",
                xytext=(4, 4),
            )
        toy_rates = {p["toy_rate"] for p in points}
        for rate in toy_rates:
            ax.axhline(rate, linestyle=":", linewidth=0.8, color="grey")
    ax.set_xscale("log", base=2)
    ticks = sorted({row["clients"] for row in rows})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("concurrent clients (closed loop)")
    ax.set_ylabel("payments completed per second")
    ax.set_title(title + " (dotted: the toy workflow's rate)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
