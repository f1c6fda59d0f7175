"""``python -m benchmarks``: payments through the whole stack, measured.

Starts the stack that ``make run`` starts (on free ports, in a temporary directory), sends
payments through the HTTP API with bounded concurrency, and reads the outcomes back from the
``payment_status`` topic with a real consumer. Reports:
- API acceptance latency (POST /initiate-payment → 202), p50/p95/max;
- end-to-end latency (POST → ``payment.success`` event on Kafka), p50/p95/max;
- throughput: payments completed per second over the whole run;
- refunds: the same for full refunds of the paid payments.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from devtools.events import EventReader
from devtools.postgres import create_postgres_database, drop_postgres_database, postgres_available
from devtools.processes import ProcessGroup
from devtools.stack import free_stack_settings, start_stack
from payments.config import DatabaseSettings


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   "
        f"max {ordered[-1] * 1000:7.1f} ms"
    )


async def _run(
    api_url: str, api_key: str, kafka: str, count: int, concurrency: int
) -> dict[str, Any]:
    reader = EventReader(kafka)
    await reader.start()
    gate = asyncio.Semaphore(concurrency)
    accepted: dict[str, float] = {}
    accept_latency: list[float] = []
    run_tag = uuid.uuid4().hex[:8]

    async with httpx.AsyncClient(
        base_url=api_url,
        timeout=60,
        trust_env=False,
        headers={"Authorization": f"Bearer {api_key}"},
    ) as api:

        async def one(i: int) -> None:
            async with gate:
                started = time.monotonic()
                response = await api.post(
                    "/initiate-payment",
                    json={
                        "order_id": f"bench-{run_tag}-{i}",
                        "user_id": f"user-{i % 50}",
                        "amount": "49.99",
                        "currency": "USD",
                        "payment_method": "credit_card",
                        "payment_token": "fake-valid-nonce",
                    },
                )
                response.raise_for_status()
                accept_latency.append(time.monotonic() - started)
                accepted[response.json()["payment_id"]] = started

        began = time.monotonic()
        tasks = [asyncio.create_task(one(i)) for i in range(count)]
        done_at: dict[str, float] = {}
        last_report = 0.0
        while len(done_at) < count:
            for event in reader.of("payment_status", status="success"):
                if event["payment_id"] in accepted and event["payment_id"] not in done_at:
                    done_at[event["payment_id"]] = time.monotonic()
            now = time.monotonic()
            if now - last_report > 2:
                print(f"  payments: {len(accepted)}/{count} accepted, {len(done_at)} succeeded")
                last_report = now
            if now - began > 600:
                raise TimeoutError(f"only {len(done_at)} of {count} payments succeeded in 600 s")
            await asyncio.sleep(0.05)
        await asyncio.gather(*tasks)
        elapsed = max(done_at.values()) - began
        e2e = [done_at[p] - accepted[p] for p in done_at]

        # Full refunds of every payment (voids, as none has settled yet).
        refund_began = time.monotonic()
        refund_ids: dict[str, float] = {}

        async def refund(payment_id: str) -> None:
            async with gate:
                started = time.monotonic()
                response = await api.post(
                    "/refund", json={"payment_id": payment_id, "reason": "benchmark"}
                )
                response.raise_for_status()
                refund_ids[response.json()["refund_id"]] = started

        refund_tasks = [asyncio.create_task(refund(p)) for p in accepted]
        refunded: dict[str, float] = {}
        while len(refunded) < count:
            for event in reader.of("refund_request", status="processed"):
                if event["refund_id"] in refund_ids and event["refund_id"] not in refunded:
                    refunded[event["refund_id"]] = time.monotonic()
            if time.monotonic() - refund_began > 600:
                raise TimeoutError(f"only {len(refunded)} of {count} refunds processed")
            await asyncio.sleep(0.05)
        await asyncio.gather(*refund_tasks)
        refund_elapsed = max(refunded.values()) - refund_began
    await reader.stop()
    return {
        "accept": accept_latency,
        "e2e": e2e,
        "throughput": count / elapsed,
        "refund_throughput": count / refund_elapsed,
        "refund_e2e": [refunded[r] - refund_ids[r] for r in refunded],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgres"], action="append")
    args = parser.parse_args()
    databases = args.database or ["sqlite", "postgres"]

    for database in databases:
        with tempfile.TemporaryDirectory(prefix="payments-bench-") as tmp:
            data_dir = Path(tmp)
            dropper = None
            if database == "postgres":
                reason = postgres_available()
                if reason:
                    print(f"skipping postgres: {reason}")
                    continue
                url, dropper = create_postgres_database("payments_bench")
            else:
                url = f"sqlite:///{data_dir / 'payments.db'}"
            settings = free_stack_settings(data_dir, database=DatabaseSettings(url=url))
            # One key sends everything: measure the service, not the per-key rate limit
            # (100/second by default, which a burst of 20 concurrent requests can reach).
            settings.api.rate_limit = "100000/second"
            print(f"\n== {database}: starting the stack (log: {data_dir / 'stack.log'})")
            try:
                with ProcessGroup(data_dir / "stack.log") as group:
                    endpoints = start_stack(group, settings, temporal_ui=False)
                    print(f"   {args.payments} payments, {args.concurrency} concurrent requests")
                    result = asyncio.run(
                        _run(
                            endpoints.api_url,
                            endpoints.api_keys["checkout"],
                            endpoints.kafka_bootstrap,
                            args.payments,
                            args.concurrency,
                        )
                    )
            finally:
                if dropper:
                    drop_postgres_database(dropper)
            print(f"   API accept (POST → 202):          {_percentiles(result['accept'])}")
            print(f"   payment end to end (→ Kafka):     {_percentiles(result['e2e'])}")
            print(f"   payment throughput:               {result['throughput']:.1f} payments/s")
            print(f"   refund end to end (→ Kafka):      {_percentiles(result['refund_e2e'])}")
            print(
                f"   refund throughput:                {result['refund_throughput']:.1f} refunds/s"
            )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
