"""GET /admin/: the sign-in form, the session an admin key buys, the page it opens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from payments.contracts import FraudReason, FraudRecord, FraudVerdict
from tests.api.conftest import Api
from tests.support.rows import payment_row


async def test_without_a_session_the_page_asks_for_a_key(api: Api) -> None:
    page = await api.anonymous.get("/admin/")
    assert page.status_code == 200
    assert 'id="login"' in page.text and 'id="dashboard"' not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


async def test_an_admin_key_buys_an_httponly_session_that_opens_the_page(api: Api) -> None:
    assert (await api.acme.post("/admin/session")).status_code == 403
    assert (await api.anonymous.post("/admin/session")).status_code == 401
    payment, _ = api.db.payments.insert(
        payment_row(
            merchant_id="acme",
            payment_status="failure",
            failure_reason="<script>alert(1)</script>",
            processor_response_code="2000",
        )
    )
    started = await api.admin.post("/admin/session")
    assert started.status_code == 204
    cookie = started.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie
    browser = api.client(None)
    browser.cookies.set("payments_admin_session", started.cookies["payments_admin_session"])
    async with browser:
        page = await browser.get("/admin/")
        assert 'id="dashboard"' in page.text
        assert 'id="payments-chart"' in page.text and 'id="volume-chart"' in page.text
        link = f"http://127.0.0.1:8233/namespaces/default/workflows/payment-{payment.payment_id}"
        assert link in page.text
        # What was stored is shown, escaped: it never runs.
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "<script>alert" not in page.text
        ended = await browser.post("/admin/logout")
        assert ended.status_code == 303
        assert 'id="login"' in (await api.anonymous.get("/admin/")).text


async def test_a_session_ends_with_its_key(api: Api) -> None:
    started = await api.admin.post("/admin/session")
    [admin_key] = [k for k in api.db.access.list_keys() if k.role == "admin"]
    api.db.access.revoke(admin_key.key_id)
    browser = api.client(None)
    browser.cookies.set("payments_admin_session", started.cookies["payments_admin_session"])
    async with browser:
        assert 'id="login"' in (await browser.get("/admin/")).text


async def test_the_page_lists_payments_held_for_review(api: Api) -> None:
    payment, _ = api.db.payments.insert(payment_row(merchant_id="acme", user_id="user-held"))
    rule = FraudReason("velocity_user_10m", "payment number 12 in 10 minutes <b>x</b>")
    deadline = datetime.now(UTC) + timedelta(minutes=90)
    api.db.fraud.record_verdict(
        FraudRecord(
            payment.payment_id,
            FraudVerdict("review", 70, [rule], 20, "fraud-model-v1"),
            None,
            None,
            deadline.isoformat(),
        )
    )
    started = await api.admin.post("/admin/session")
    browser = api.client(None)
    browser.cookies.set("payments_admin_session", started.cookies["payments_admin_session"])
    async with browser:
        page = (await browser.get("/admin/")).text
    held = page[page.index('<table id="reviews">') :]
    held = held[: held.index("</table>")]
    assert payment.payment_id in held and "user-held" in held
    assert "velocity_user_10m" in held and "payment number 12 in 10 minutes" in held
    assert "&lt;b&gt;x&lt;/b&gt;" in held  # a stored message is shown, escaped
    assert "(in 1 h 29 min)" in held or "(in 1 h 30 min)" in held
    assert f"workflows/payment-{payment.payment_id}" in held
