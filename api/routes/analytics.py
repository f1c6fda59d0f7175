"""Payment analytics: trends of a time window (the blueprint's future enhancement). A checkout
key sees its own merchant's; an admin key every merchant's, or one (``merchant_id``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import AnalyticsDep, PrincipalDep
from api.errors import ERRORS
from payments.analytics import LONGEST, Granularity, PaymentAnalytics, summarize
from payments.errors import Forbidden, InvalidRequest
from payments.money import Money

router = APIRouter(tags=["analytics"])


class DeclineOut(BaseModel):
    reason: str
    code: str | None
    count: int


class BucketOut(BaseModel):
    start: datetime
    count: int
    succeeded: int
    failed: int
    volume: dict[str, str]  # currency -> amount paid ("1234.50")


class PaymentAnalyticsOut(BaseModel):
    start: datetime
    end: datetime
    granularity: Granularity
    merchant_id: str | None
    count: int
    by_status: dict[str, int]
    by_method: dict[str, int]
    by_currency: dict[str, int]
    volume: dict[str, str]
    refunded_volume: dict[str, str]
    success_rate: float | None
    refund_rate: float | None
    top_declines: list[DeclineOut]
    seconds_to_final_p50: float | None
    seconds_to_final_p95: float | None
    buckets: list[BucketOut]

    @classmethod
    def of(cls, figures: PaymentAnalytics, merchant_id: str | None) -> PaymentAnalyticsOut:
        return cls(
            start=figures.start,
            end=figures.end,
            granularity=figures.granularity,
            merchant_id=merchant_id,
            count=figures.count,
            by_status=figures.by_status,
            by_method=figures.by_method,
            by_currency=figures.by_currency,
            volume=_amounts(figures.volume),
            refunded_volume=_amounts(figures.refunded_volume),
            success_rate=figures.success_rate,
            refund_rate=figures.refund_rate,
            top_declines=[
                DeclineOut(reason=d.reason, code=d.code, count=d.count)
                for d in figures.top_declines
            ],
            seconds_to_final_p50=figures.seconds_to_final_p50,
            seconds_to_final_p95=figures.seconds_to_final_p95,
            buckets=[
                BucketOut(
                    start=b.start,
                    count=b.count,
                    succeeded=b.succeeded,
                    failed=b.failed,
                    volume=_amounts(b.volume),
                )
                for b in figures.buckets
            ],
        )


# Far enough from datetime's own limits that a bucket's end never overflows.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, tzinfo=UTC)


def _amounts(minor: dict[str, int]) -> dict[str, str]:
    return {currency: str(Money(amount, currency)) for currency, amount in sorted(minor.items())}


def _utc(instant: datetime, field: str) -> datetime:
    try:
        return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)
    except OverflowError:  # year 1 an hour east of UTC is before year 1 in UTC
        raise InvalidRequest(f"{field} must lie between 1970 and 9998", field=field) from None


@router.get("/analytics/payments", response_model=PaymentAnalyticsOut, responses=ERRORS)
async def payment_analytics(
    analytics: AnalyticsDep,
    principal: PrincipalDep,
    start: Annotated[datetime, Query(alias="from", description="ISO 8601; UTC if no offset")],
    end: Annotated[datetime, Query(alias="to", description="exclusive; ISO 8601")],
    granularity: Granularity = Granularity.DAY,
    merchant_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> PaymentAnalyticsOut:
    """Payments created in [from, to): counts by status, method and currency; volume paid and
    refunded by currency; success and refund rates; the top decline reasons; p50/p95 seconds
    from initiation to the final status; the same per hour or day."""
    start, end = _utc(start, "from"), _utc(end, "to")
    if start < EARLIEST or end > LATEST:
        raise InvalidRequest("from and to must lie between 1970 and 9998", field="from")
    if end <= start:
        raise InvalidRequest("to must be later than from", field="to")
    if end - start > LONGEST[granularity]:
        days = LONGEST[granularity].days
        raise InvalidRequest(f"a {granularity} granularity covers at most {days} days", field="to")
    if principal.is_admin:
        scope = merchant_id
    elif merchant_id not in (None, principal.merchant_id):
        raise Forbidden("a checkout key sees its own merchant's analytics only")
    else:
        scope = principal.merchant_id
    rows = await asyncio.to_thread(analytics.payments_between, start, end, scope)
    return PaymentAnalyticsOut.of(summarize(rows, start, end, granularity), scope)
