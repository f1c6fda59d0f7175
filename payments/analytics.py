"""Payment analytics (the blueprint's future enhancement): trends of a time window, computed
from the payments stored (and the audit trail's moment each became final).

Pure: :func:`summarize` takes the window's rows and returns the figures; the repository
(payments/db/repositories/analytics.py) reads them, GET /analytics/payments serves them.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from payments.vocabulary import PaymentStatus


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"


STEP = {Granularity.HOUR: timedelta(hours=1), Granularity.DAY: timedelta(days=1)}
# The longest window each granularity answers: at most 2,208 buckets.
LONGEST = {Granularity.HOUR: timedelta(days=31), Granularity.DAY: timedelta(days=92)}
TOP_DECLINES = 5


@dataclass(frozen=True)
class PaymentFacts:
    """What analytics needs of one payment."""

    created_at: datetime
    status: str
    method: str
    currency: str
    amount: int  # minor units
    refunded: int  # minor units
    failure_reason: str | None
    response_code: str | None
    finalized_at: datetime | None  # when it became success or failure (audit trail)


@dataclass
class Bucket:
    start: datetime
    count: int = 0
    succeeded: int = 0
    failed: int = 0
    volume: dict[str, int] = field(default_factory=dict)  # currency -> paid minor units


@dataclass(frozen=True)
class Decline:
    reason: str
    code: str | None
    count: int


@dataclass(frozen=True)
class PaymentAnalytics:
    start: datetime
    end: datetime
    granularity: Granularity
    count: int
    by_status: dict[str, int]
    by_method: dict[str, int]
    by_currency: dict[str, int]
    volume: dict[str, int]  # currency -> paid minor units
    refunded_volume: dict[str, int]
    success_rate: float | None  # success / (success + failure); None when none is final
    refund_rate: float | None  # refunded successful payments / successful payments
    top_declines: list[Decline]
    seconds_to_final_p50: float | None
    seconds_to_final_p95: float | None
    buckets: list[Bucket]


def floor(instant: datetime, granularity: Granularity) -> datetime:
    instant = instant.astimezone(UTC)
    if granularity == Granularity.HOUR:
        return instant.replace(minute=0, second=0, microsecond=0)
    return instant.replace(hour=0, minute=0, second=0, microsecond=0)


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile; None of nothing."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def summarize(
    rows: list[PaymentFacts], start: datetime, end: datetime, granularity: Granularity
) -> PaymentAnalytics:
    """The figures of the payments created in [start, end)."""
    step = STEP[granularity]
    buckets: dict[datetime, Bucket] = {}
    cursor = floor(start, granularity)
    while cursor < end:
        buckets[cursor] = Bucket(cursor)
        cursor += step
    by_status: Counter[str] = Counter()
    by_method: Counter[str] = Counter()
    by_currency: Counter[str] = Counter()
    volume: defaultdict[str, int] = defaultdict(int)
    refunded: defaultdict[str, int] = defaultdict(int)
    declines: Counter[tuple[str, str | None]] = Counter()
    durations: list[float] = []
    refunded_payments = 0
    for row in rows:
        bucket = buckets[floor(row.created_at, granularity)]
        bucket.count += 1
        by_status[row.status] += 1
        by_method[row.method] += 1
        by_currency[row.currency] += 1
        if row.status == PaymentStatus.SUCCESS:
            bucket.succeeded += 1
            bucket.volume[row.currency] = bucket.volume.get(row.currency, 0) + row.amount
            volume[row.currency] += row.amount
            if row.refunded:
                refunded_payments += 1
                refunded[row.currency] += row.refunded
        elif row.status == PaymentStatus.FAILURE:
            bucket.failed += 1
            declines[(row.failure_reason or "unknown", row.response_code)] += 1
        if row.finalized_at is not None:
            durations.append((row.finalized_at - row.created_at).total_seconds())
    final = by_status[PaymentStatus.SUCCESS] + by_status[PaymentStatus.FAILURE]
    succeeded = by_status[PaymentStatus.SUCCESS]
    return PaymentAnalytics(
        start=start,
        end=end,
        granularity=granularity,
        count=len(rows),
        by_status=dict(by_status),
        by_method=dict(by_method),
        by_currency=dict(by_currency),
        volume=dict(volume),
        refunded_volume=dict(refunded),
        success_rate=succeeded / final if final else None,
        refund_rate=refunded_payments / succeeded if succeeded else None,
        top_declines=[
            Decline(reason, code, count)
            for (reason, code), count in declines.most_common(TOP_DECLINES)
        ],
        seconds_to_final_p50=percentile(durations, 0.50),
        seconds_to_final_p95=percentile(durations, 0.95),
        buckets=list(buckets.values()),
    )
