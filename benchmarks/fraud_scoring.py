"""``python -m benchmarks.fraud_scoring`` (``make bench-fraud``; ``make bench`` runs it first):
the latency of the learned fraud score, one payment at a time as the fraud step calls it.

Varied payments from the training data generator (another seed than the packaged model's),
each scored once after a warm-up; the per-call latencies' p50/p95/p99/max in ms are printed
and written as JSON under ``bench/results/``. Exits 1 when the p99 misses issue 12's target.
No stack: it runs in seconds.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from benchmarks import report
from benchmarks.measure import percentiles
from devtools.fraud_dataset import generate
from payments.fraud.model import LearnedScore, packaged_model_path

# Issue 12: the learned score must not be what makes the fraud step slow.
TARGET_P99_MS = 5.0
ROWS = 20_000
SEED = 99  # not the packaged model's training seed (12)
WARMUP = 1_000

Row = TypeVar("Row")


def measure(
    call: Callable[[Row], object], rows: Sequence[Row], warmup: int = WARMUP
) -> dict[str, Any]:
    """The latency of ``call`` on each of ``rows`` (after ``warmup`` untimed calls), in ms:
    p50/p95/p99/max (nearest rank), mean and count."""
    for row in rows[:warmup]:
        call(row)
    clock = time.perf_counter_ns
    elapsed: list[float] = []
    for row in rows:
        started = clock()
        call(row)
        elapsed.append((clock() - started) / 1e6)
    figures = percentiles(elapsed) or {}
    return {
        **figures,
        "mean": sum(elapsed) / len(elapsed) if elapsed else 0.0,
        "count": len(elapsed),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fraud_scoring", description=__doc__)
    parser.add_argument("--rows", type=int, default=ROWS, help=f"payments scored (default {ROWS})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"of the payments (default {SEED})")
    parser.add_argument("--model", type=Path, help="a model file (default: the packaged one)")
    options = parser.parse_args(argv)

    model_path = options.model or packaged_model_path()
    started = time.perf_counter()
    model = LearnedScore.load(model_path)
    load_ms = (time.perf_counter() - started) * 1000
    rows = [features for features, _ in generate(options.rows, options.seed)]
    figures = measure(model.score, rows)
    met = figures["p99"] <= TARGET_P99_MS

    print(f"\n### Learned fraud score ({model.version}), {len(rows)} payments\n")
    print("| p50 ms | p95 ms | p99 ms | max ms | mean ms | load ms |")
    print("|---|---|---|---|---|---|")
    print(
        "| "
        + " | ".join(f"{figures[key]:.4f}" for key in ("p50", "p95", "p99", "max", "mean"))
        + f" | {load_ms:.1f} |"
    )
    print(
        f"\n- {'met' if met else 'NOT met'}: fraud score p99 = {figures['p99']:.4f} ms "
        f"(target ≤ {TARGET_P99_MS:g} ms)"
    )
    path = report.RESULTS / f"{report.result_stem('fraud-scoring')}.json"
    report.write_json(
        path,
        {
            "meta": {
                "git": report.git_describe(),
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "model": str(model_path),
                "version": model.version,
                "rows": len(rows),
                "seed": options.seed,
            },
            "latency_ms": figures,
            "load_ms": load_ms,
            "targets": [
                {
                    "target": "fraud score p99 ms",
                    "value": figures["p99"],
                    "limit": TARGET_P99_MS,
                    "met": met,
                }
            ],
        },
    )
    print(f"\nwritten: {path}", flush=True)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
