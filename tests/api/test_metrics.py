"""GET /metrics: Prometheus's text format, for an admin key only; requests by route template
and status with their latency; payments and refunds as the database holds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from payments.contracts import FraudReason, FraudRecord, FraudVerdict
from tests.api.conftest import Api
from tests.support.rows import payment_row, refund_row


async def scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await api.admin.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def test_only_an_admin_key_reads_the_metrics(api: Api) -> None:
    assert (await api.anonymous.get("/metrics")).status_code == 401
    assert (await api.acme.get("/metrics")).status_code == 403
    assert (await api.admin.get("/metrics")).status_code == 200


async def test_requests_are_counted_by_route_template_and_status(api: Api) -> None:
    for _ in range(3):
        assert (await api.acme.get("/payment/no-such-payment")).status_code == 404
    assert (await api.anonymous.get("/no/such/path")).status_code == 404
    assert (await api.anonymous.get("/healthz")).status_code == 200
    metrics = await scrape(api)
    by_route = (("method", "GET"), ("route", "/payment/{payment_id}"), ("status", "404"))
    assert metrics[("payments_api_requests_total", by_route)] == 3
    unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert metrics[("payments_api_requests_total", unmatched)] == 1
    latency = (("method", "GET"), ("route", "/payment/{payment_id}"))
    assert metrics[("payments_api_request_duration_seconds_count", latency)] == 3
    # No label ever holds an id, nor a method a client made up.
    assert not any("no-such-payment" in value for _, labels in metrics for _, value in labels)
    for invented in ("BREW", "WHEN"):
        await api.anonymous.request(invented, "/healthz")
    methods = {value for _, labels in await scrape(api) for key, value in labels if key == "method"}
    assert "BREW" not in methods and "other" in methods


async def test_payments_and_refunds_are_counted_as_stored(api: Api) -> None:
    stored = [("success", "credit_card"), ("success", "credit_card"), ("failure", "wallet")]
    rows = []
    for status, method in stored:
        row = payment_row(merchant_id="acme", payment_status=status)
        row.payment_method = method
        rows.append(api.db.payments.insert(row)[0])
    api.db.refunds.reserve(refund_row(rows[0], 1000), whole_remainder=False)
    metrics = await scrape(api)
    assert metrics[("payments_payments", (("method", "credit_card"), ("status", "success")))] == 2
    assert metrics[("payments_payments", (("method", "wallet"), ("status", "failure")))] == 1
    assert metrics[("payments_refunds", (("status", "initiated"),))] == 1


async def test_reviews_waiting_and_the_nearest_deadline(api: Api) -> None:
    metrics = await scrape(api)
    assert metrics[("payments_fraud_reviews_waiting", ())] == 0
    assert not any(name == "payments_fraud_review_deadline_seconds" for name, _ in metrics)
    verdict = FraudVerdict("review", 70, [FraudReason("repeat_payment", "again")])
    for hours in (5, 2):
        payment, _ = api.db.payments.insert(payment_row(merchant_id="acme"))
        deadline = (datetime.now(UTC) + timedelta(hours=hours)).isoformat()
        api.db.fraud.record_verdict(FraudRecord(payment.payment_id, verdict, None, None, deadline))
    metrics = await scrape(api)
    assert metrics[("payments_fraud_reviews_waiting", ())] == 2
    assert 7100 < metrics[("payments_fraud_review_deadline_seconds", ())] <= 7200
