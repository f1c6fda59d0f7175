"""OpenTelemetry tracing: one trace per payment, from the HTTP request (or the Kafka message)
that started it, through its Temporal workflow and activities, to the Kafka events it
announced (their ``traceparent`` header), so that a consumer can continue it.

FastAPI opens each request's server span itself (continuing a caller's ``traceparent``);
Temporal's tracing interceptor (workflows/connection.py) carries the context into the
workflow and its activities; the publisher puts it in every event's headers, and the
consumer continues a producer's trace from a payment_initiation message's headers.

Off by default: without ``TRACING_OTLP_ENDPOINT`` the global tracer provider stays
OpenTelemetry's no-op one and every span costs next to nothing. Each process configures it
once, in its composition root; W3C trace context is the propagation format everywhere.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterable, Mapping

from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from payments.config import TracingSettings

SERVICE = "payment-service"


def configure_tracing(settings: TracingSettings, *, process: str) -> TracerProvider | None:
    """Export this process's spans to the configured collector (flushed when the process
    exits); the provider, or None when tracing is off."""
    if settings.otlp_endpoint is None:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": f"{SERVICE}-{process}"}))
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=settings.otlp_endpoint),
            schedule_delay_millis=settings.export_interval_seconds * 1000,
        )
    )
    trace.set_tracer_provider(provider)
    # What is still batched goes out when the process ends (after a graceful stop).
    atexit.register(provider.shutdown)
    return provider


def trace_headers() -> list[tuple[str, bytes]]:
    """The current trace context as Kafka headers (``traceparent``, ``tracestate``)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(name, value.encode()) for name, value in carrier.items()]


def context_of(headers: Iterable[tuple[str, bytes]] | Mapping[str, str]) -> context.Context:
    """The trace context a Kafka message's or an HTTP request's headers carry (none: a new
    trace begins)."""
    if isinstance(headers, Mapping):
        return propagate.extract(dict(headers))
    carrier = {name: value.decode("latin-1") for name, value in headers}
    return propagate.extract(carrier)
