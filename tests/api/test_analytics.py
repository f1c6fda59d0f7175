"""GET /analytics/payments over stored payments and their audit trail, on SQLite and on
PostgreSQL: what each key sees, the figures, refused windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from payments.db.models import AuditEvent
from tests.api.conftest import Api
from tests.support.rows import payment_row

DAY = datetime(2026, 11, 30, tzinfo=UTC)
WINDOW = {"from": DAY.isoformat(), "to": (DAY + timedelta(days=1)).isoformat()}


def store(
    api: Api, merchant: str, hours: float, status: str, seconds_to_final: float, **columns: Any
) -> None:
    created = DAY + timedelta(hours=hours)
    payment, _ = api.db.payments.insert(
        payment_row(merchant_id=merchant, payment_status=status, created_at=created, **columns)
    )
    with Session(api.engine) as session, session.begin():
        session.add(
            AuditEvent(
                payment_id=payment.payment_id,
                subject="payment",
                from_status="pending",
                to_status=status,
                cause="workflow",
                occurred_at=created + timedelta(seconds=seconds_to_final),
            )
        )


async def test_a_merchant_sees_its_own_figures_and_an_admin_everyones(
    api_on_each_database: Api,
) -> None:
    api = api_on_each_database
    store(api, "acme", 1, "success", 0.5, amount=4999)
    store(api, "acme", 2, "success", 1.5, amount=1001, refunded_amount=1001)
    store(
        api,
        "acme",
        3,
        "failure",
        0.7,
        failure_reason="processor_declined",
        processor_response_code="2000",
    )
    store(api, "globex", 4, "success", 3.0, amount=100)
    store(api, "acme", 30, "success", 1.0)  # the next day: outside the window

    mine = await api.acme.get("/analytics/payments", params=WINDOW)
    assert mine.status_code == 200, mine.text
    figures = mine.json()
    assert figures["merchant_id"] == "acme"
    assert figures["count"] == 3
    assert figures["by_status"] == {"success": 2, "failure": 1}
    assert figures["volume"] == {"USD": "60.00"}
    assert figures["refunded_volume"] == {"USD": "10.01"}
    assert figures["success_rate"] == 2 / 3
    assert figures["refund_rate"] == 1 / 2
    assert figures["top_declines"] == [{"reason": "processor_declined", "code": "2000", "count": 1}]
    assert figures["seconds_to_final_p50"] == 0.7
    assert figures["seconds_to_final_p95"] == 1.5
    [bucket] = figures["buckets"]
    assert (bucket["count"], bucket["succeeded"], bucket["failed"]) == (3, 2, 1)

    everyone = (await api.admin.get("/analytics/payments", params=WINDOW)).json()
    assert everyone["merchant_id"] is None and everyone["count"] == 4
    one = await api.admin.get("/analytics/payments", params={**WINDOW, "merchant_id": "globex"})
    assert one.json()["count"] == 1

    hourly = (
        await api.acme.get("/analytics/payments", params={**WINDOW, "granularity": "hour"})
    ).json()
    assert len(hourly["buckets"]) == 24
    assert [b["count"] for b in hourly["buckets"][:4]] == [0, 1, 1, 1]


async def test_refused_questions(api: Api) -> None:
    other = await api.acme.get("/analytics/payments", params={**WINDOW, "merchant_id": "globex"})
    assert other.status_code == 403
    backwards = {"from": WINDOW["to"], "to": WINDOW["from"]}
    assert (await api.acme.get("/analytics/payments", params=backwards)).status_code == 422
    too_long = {
        "from": DAY.isoformat(),
        "to": (DAY + timedelta(days=40)).isoformat(),
        "granularity": "hour",
    }
    refused = await api.acme.get("/analytics/payments", params=too_long)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "to"
    assert (
        await api.acme.get("/analytics/payments", params={"from": "yesterday", "to": "now"})
    ).status_code == 422
    assert (await api.acme.get("/analytics/payments")).status_code == 422
    # At the calendar's end a day's bucket would overflow: refused, never a 500.
    edge = {"from": "9999-12-30T00:00:00Z", "to": "9999-12-31T23:00:00Z"}
    assert (await api.acme.get("/analytics/payments", params=edge)).status_code == 422
    # Nor where the offset alone takes an instant out of the calendar (found by fuzzing).
    for edge in (
        {"from": "0001-01-01T00:00:00+01:00", "to": "2026-01-01T00:00:00Z"},
        {"from": "2026-01-01T00:00:00Z", "to": "9999-12-31T23:59:00-01:00"},
    ):
        assert (await api.acme.get("/analytics/payments", params=edge)).status_code == 422
    assert (await api.anonymous.get("/analytics/payments", params=WINDOW)).status_code == 401
