"""The API's Prometheus metrics (GET /metrics, with an admin key).

- ``payments_api_requests_total{method, route, status}`` and
  ``payments_api_request_duration_seconds{method, route}``: every answer, by the route's path
  template (``/payment/{payment_id}``, never the id itself: bounded labels);
- ``payments_payments{status, method}`` and ``payments_refunds{status}``: what the database
  holds, counted at each scrape, so that every API replica reports the same truth;
- ``payments_fraud_reviews_waiting``: payments held for review (authorized, not charged),
  and ``payments_fraud_review_deadline_seconds``: how long until the nearest of them is
  voided unless decided (absent when none waits).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payments.db.database import Database

# Seconds: an in-process answer is milliseconds; a synchronous answer (Prefer: wait) seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"  # no route: a 404 of a path nobody serves
# Any other method a client invents is counted as "other": labels stay a bounded set.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ApiMetrics:
    """One registry per app (tests build many apps in one process)."""

    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "payments_api_requests",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "payments_api_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Ledger(db))

    def exposition(self) -> bytes:
        """The text format; reads the database (call it from a thread)."""
        return generate_latest(self.registry)


class _Ledger(Collector):
    def __init__(self, db: Database) -> None:
        self._db = db

    def describe(self) -> Iterator[Metric]:
        return iter(())  # no database read when registered

    def collect(self) -> Iterator[Metric]:
        payments = GaugeMetricFamily(
            "payments_payments", "Payments by status and method", labels=["status", "method"]
        )
        for (status, method), count in self._db.payments.counts_by_status_and_method().items():
            payments.add_metric([status, method], count)
        yield payments
        refunds = GaugeMetricFamily("payments_refunds", "Refunds by status", labels=["status"])
        for status, count in self._db.refunds.counts_by_status().items():
            refunds.add_metric([status], count)
        yield refunds
        waiting, nearest = self._db.fraud.review_queue()
        yield GaugeMetricFamily(
            "payments_fraud_reviews_waiting", "Payments held for review", value=waiting
        )
        if nearest is not None:
            yield GaugeMetricFamily(
                "payments_fraud_review_deadline_seconds",
                "Seconds until the nearest held payment is voided unless reviewed",
                value=(nearest - datetime.now(UTC)).total_seconds(),
            )


class HttpMetrics:
    """Pure ASGI: times each HTTP request and counts its answer by the route that served it
    (FastAPI puts the matched route in the scope)."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED)
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
