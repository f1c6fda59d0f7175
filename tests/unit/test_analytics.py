"""payments.analytics.summarize: the figures of a window's payments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from payments.analytics import Granularity, PaymentFacts, percentile, summarize

START = datetime(2026, 12, 1, tzinfo=UTC)


def fact(
    hours: float,
    status: str,
    *,
    method: str = "credit_card",
    currency: str = "USD",
    amount: int = 1000,
    refunded: int = 0,
    reason: str | None = None,
    code: str | None = None,
    final_after: float | None = 1.0,
) -> PaymentFacts:
    created = START + timedelta(hours=hours)
    return PaymentFacts(
        created_at=created,
        status=status,
        method=method,
        currency=currency,
        amount=amount,
        refunded=refunded,
        failure_reason=reason,
        response_code=code,
        finalized_at=created + timedelta(seconds=final_after) if final_after is not None else None,
    )


def test_a_window_by_day() -> None:
    rows = [
        fact(1, "success", amount=5000, refunded=1000, final_after=0.4),
        fact(2, "success", currency="EUR", amount=2500, final_after=0.6),
        fact(3, "failure", method="wallet", reason="processor_declined", code="2000"),
        fact(25, "failure", reason="processor_declined", code="2000", final_after=9.0),
        fact(26, "failure", reason="gateway_rejected"),
        fact(47, "pending", final_after=None),
    ]
    figures = summarize(rows, START, START + timedelta(days=2), Granularity.DAY)
    assert figures.count == 6
    assert figures.by_status == {"success": 2, "failure": 3, "pending": 1}
    assert figures.by_method == {"credit_card": 5, "wallet": 1}
    assert figures.volume == {"USD": 5000, "EUR": 2500}
    assert figures.refunded_volume == {"USD": 1000}
    assert figures.success_rate == 2 / 5
    assert figures.refund_rate == 1 / 2
    assert [(d.reason, d.code, d.count) for d in figures.top_declines] == [
        ("processor_declined", "2000", 2),
        ("gateway_rejected", None, 1),
    ]
    assert figures.seconds_to_final_p50 == 1.0
    assert figures.seconds_to_final_p95 == 9.0
    assert [(b.start, b.count, b.succeeded, b.failed) for b in figures.buckets] == [
        (START, 3, 2, 1),
        (START + timedelta(days=1), 3, 0, 2),
    ]
    assert figures.buckets[0].volume == {"USD": 5000, "EUR": 2500}


def test_an_empty_window_has_empty_buckets_and_no_rates() -> None:
    figures = summarize([], START, START + timedelta(hours=3), Granularity.HOUR)
    assert [b.start for b in figures.buckets] == [START + timedelta(hours=h) for h in range(3)]
    assert figures.success_rate is None and figures.refund_rate is None
    assert figures.seconds_to_final_p50 is None


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile(list(map(float, range(1, 101))), 0.95) == 95.0
    assert percentile([], 0.5) is None
