"""The worker's own metrics, beside the Temporal SDK's (workflow and activity counts, task
latencies, failures): recorded through the activity's metric meter, so they appear on the
same Prometheus endpoint (``TEMPORAL_METRICS_ADDRESS``) with the activity's labels.

- ``payments_gateway_request_duration`` (seconds) by ``operation`` (sale, find, refund...)
  and ``outcome`` (``ok``, or ``error`` for a timeout, a refusal, an outage);
- ``payments_gateway_declines`` by ``code`` (the processor's response code, or the reason
  when the gateway gave none).

Outside an activity (tests calling activity methods directly) nothing is recorded; without an
endpoint the SDK's meter records nothing either.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from temporalio import activity


@contextlib.contextmanager
def gateway_call_timed(operation: str) -> Iterator[None]:
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        if activity.in_activity():
            activity.metric_meter().create_histogram_float(
                "payments_gateway_request_duration",
                "Time the payment gateway took to answer, by operation and outcome",
                "s",
            ).with_additional_attributes({"operation": operation, "outcome": outcome}).record(
                time.perf_counter() - started
            )


def count_decline(code: str) -> None:
    if activity.in_activity():
        activity.metric_meter().create_counter(
            "payments_gateway_declines", "Charges the gateway declined, by response code"
        ).with_additional_attributes({"code": code}).add(1)
