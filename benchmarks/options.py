"""The command line of ``python -m benchmarks``: what to run, and how much of it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.stack import DATABASES

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
    workers: list[int]
    open_seconds: float
    open_rate: float | None
    arrivals: str
    sync_count: int
    prefer_wait: int
    scaling: bool
    quick: bool


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="What a user of the payment service feels, next to what Temporal costs.",
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
    parser.add_argument(
        "--workers",
        type=int,
        action="append",
        help="payment worker processes, repeatable: a stack for each (default 1; --scaling: 1, 2)",
    )
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
        help="the toy, then saturation for each of --clients (8, 32, 128), on a stack for "
        "each of --workers (1, 2)",
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    args = parser.parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    quick = args.quick
    default_clients = list(SCALING_CLIENTS) if args.scaling else [32]
    default_workers = list(SCALING_WORKERS) if args.scaling else [1]
    return Options(
        databases=args.database or list(DATABASES),
        phases=phases,
        payments=args.payments or (40 if quick else 300),
        toys=args.toys or (60 if quick else 300),
        clients=args.clients or default_clients,
        workers=args.workers or default_workers,
        open_seconds=args.open_loop_seconds or (10.0 if quick else 60.0),
        open_rate=args.open_rate,
        arrivals=args.arrivals,
        sync_count=args.sync_count or (10 if quick else 50),
        prefer_wait=args.prefer_wait,
        scaling=args.scaling,
        quick=quick,
    )
