"""The API's edge: body cap, rate limits, security headers, card numbers and control
characters refused before anything is stored, exchange-rate guard, webhook freshness and
replays, and the codec endpoint with its session cookie and CORS."""

from __future__ import annotations

import asyncio
import base64
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import braintree
import pytest

from devtools.sandbox.webhooks import sign_payload
from payments.contracts import PaymentOutcome
from payments.db.models import Payment
from payments.gateway.braintree_gateway import build_braintree_gateway
from tests.api.conftest import BODY, Api
from tests.api.test_access import assert_error

CARD = "4111111111111111"


async def test_security_headers_on_every_answer(api: Api) -> None:
    for response in (
        await api.anonymous.get("/healthz"),
        await api.anonymous.get("/payments"),  # 401
        await api.acme.get("/payment/unknown"),  # 404
        await api.acme.post("/initiate-payment", content=b"x" * 70_000),  # 413
    ):
        assert response.headers["Cache-Control"] == "no-store", response.status_code
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_bodies_over_the_cap_are_refused(api: Api) -> None:
    big = {**BODY, "order_id": "o" * 10, "padding": "x" * 70_000}
    assert_error(await api.acme.post("/initiate-payment", json=big), 413, "payload_too_large")

    async def chunks() -> object:
        for _ in range(100):
            yield b"x" * 1024  # streamed, no Content-Length

    streamed = await api.acme.post("/initiate-payment", content=chunks())  # type: ignore[arg-type]
    assert_error(streamed, 413, "payload_too_large")
    # Just under the cap: read, and answered on its merits.
    assert (
        await api.acme.post("/initiate-payment", json={**BODY, "order_id": "o" * 60_000})
    ).status_code == 422


async def test_rate_limits_per_key(limited_api: Api) -> None:
    api = limited_api
    answers = [(await api.acme.get("/payments")).status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]
    limited = await api.acme.get("/payments")
    assert_error(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 1
    # Another key has its own budget.
    assert (await api.globex.get("/payments")).status_code == 200
    await asyncio.sleep(1.1)
    assert (await api.acme.get("/payments")).status_code == 200


async def test_failed_authentication_is_rate_limited(limited_api: Api) -> None:
    bad = limited_api.client("psk_000000000000_" + "B" * 43)
    answers = [(await bad.get("/payments")).status_code for _ in range(4)]
    assert answers == [401, 401, 401, 429]
    await bad.aclose()


CARD_FORMS = [CARD, "4111 1111 1111 1111", "4111-1111-1111-1111", "5555555555554444"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/initiate-payment", {**BODY, "payment_token": CARD}),
        ("/initiate-payment", {**BODY, "order_id": f"order {CARD}"}),
        ("/initiate-payment", {**BODY, "user_id": CARD}),
        ("/initiate-payment", {**BODY, "amount": CARD}),
        ("/initiate-payment", {**BODY, "payment_token": None, "payment_method_id": CARD}),
        ("/initiate-payment", {**BODY, "card": {"number": CARD}}),
        ("/refund", {"payment_id": "p", "reason": f"card {CARD} was stolen"}),
        ("/refund", {"payment_id": CARD, "reason": "x"}),
        ("/verify-payment", {"payment_id": CARD}),
        ("/payment-methods", {"user_id": "u", "payment_token": CARD}),
    ],
)
async def test_card_numbers_are_refused_in_every_body_field(
    api: Api, path: str, body: dict[str, object]
) -> None:
    response = await api.acme.post(path, json=body)
    assert_error(response, 422, "card_number_not_allowed")
    assert CARD not in response.text and "1111" not in response.text
    assert (await api.admin.get("/payments")).json()["items"] == []


@pytest.mark.parametrize("card", CARD_FORMS)
async def test_card_numbers_are_refused_anywhere_in_the_request(api: Api, card: str) -> None:
    for response in (
        await api.acme.post("/initiate-payment", json={**BODY, "payment_token": card}),
        await api.acme.get(f"/payment/{card}"),
        await api.acme.get("/payments", params={"order_id": card}),
        await api.acme.post(
            "/initiate-payment", json=BODY, headers={"Idempotency-Key": f"key-{card}"}
        ),
        await api.acme.post(
            "/initiate-payment",
            content=('{"payment_token": "' + "".join(f"\\u{ord(c):04x}" for c in card) + '"}'),
            headers={"Content-Type": "application/json"},
        ),
        await api.anonymous.post(
            "/webhooks/braintree", content=f"bt_signature=x&bt_payload={card}".encode()
        ),
        await api.admin.put("/exchange-rates/SEK/USD", json={"rate": card}),
        await api.admin.post("/admin/api-keys", json={"role": "checkout", "merchant_id": card}),
    ):
        assert_error(response, 422, "card_number_not_allowed")
        assert card not in response.text


async def test_decimals_are_not_card_numbers(api: Api) -> None:
    # A rate with many places holds a long digit run; it is not a card number.
    rate = await api.admin.put("/exchange-rates/SEK/USD", json={"rate": "0.0912345678901234"})
    assert rate.status_code == 200, rate.text


@pytest.mark.parametrize(
    "body",
    [
        {**BODY, "payment_token": "abc\u0001def"},
        {**BODY, "payment_token": "nonce-\u00e9"},  # tokens are printable ASCII
        {**BODY, "order_id": "order\u0000"},
        {**BODY, "payment_token": None, "payment_method_id": "id\u007f"},
        {**BODY, "user_id": "us\u0085er"},
    ],
)
async def test_control_characters_are_a_422(api: Api, body: dict[str, object]) -> None:
    started = time.monotonic()
    response = await api.acme.post("/initiate-payment", json=body)
    assert_error(response, 422, "invalid_characters")
    assert time.monotonic() - started < 2


async def test_control_characters_in_the_path_and_query(api: Api) -> None:
    assert_error(await api.acme.get("/payment/abc%01def"), 422, "invalid_characters")
    assert_error(
        await api.acme.get("/payments", params={"order_id": "a\u0002"}), 422, "invalid_characters"
    )
    for token in ("x" * 513, ""):
        assert (
            await api.acme.post("/payment-methods", json={"user_id": "u", "payment_token": token})
        ).status_code == 422


async def test_exchange_rates_need_an_override_to_jump(api: Api) -> None:
    first = await api.admin.put("/exchange-rates/SEK/USD", json={"rate": "0.0950"})
    assert first.status_code == 200 and first.json()["set_by"].startswith("key_")
    near = await api.admin.put("/exchange-rates/SEK/USD", json={"rate": "0.0990"})
    assert near.status_code == 200
    typo = await api.admin.put("/exchange-rates/SEK/USD", json={"rate": "0.990"})
    assert_error(typo, 422, "rate_change_too_large")
    assert (await api.admin.get("/exchange-rates/SEK/USD")).json()["rate"] == "0.0990"
    forced = await api.admin.put(
        "/exchange-rates/SEK/USD", json={"rate": "0.990", "override": True}
    )
    assert forced.status_code == 200 and forced.json()["rate"] == "0.990"


def _webhook(
    api: Api,
    sent_at: datetime,
    kind: str = braintree.WebhookNotification.Kind.Check,
    subject_id: str = "check",
) -> dict[str, str]:
    """A webhook signed with the API's gateway credentials, stamped ``sent_at``."""
    gateway = build_braintree_gateway(api.settings.gateway)
    sample = gateway._sdk.webhook_testing.sample_notification(kind, subject_id)
    document = base64.b64decode(sample["bt_payload"]).decode()
    stamped = re.sub(
        r"<timestamp[^>]*>[^<]*</timestamp>",
        f'<timestamp type="datetime">{sent_at:%Y-%m-%dT%H:%M:%SZ}</timestamp>',
        document,
    )
    payload = base64.encodebytes(stamped.encode()).decode()
    signature = sign_payload(
        api.settings.gateway.public_key,
        api.settings.gateway.private_key.get_secret_value(),
        payload,
    )
    return {"bt_signature": signature, "bt_payload": payload}


async def test_webhooks_fresh_once_stale_never(api: Api) -> None:
    fresh = _webhook(api, datetime.now(UTC))
    first = await api.anonymous.post("/webhooks/braintree", data=fresh)
    assert first.status_code == 200 and first.json()["status"] == "ignored", first.text
    replay = await api.anonymous.post("/webhooks/braintree", data=fresh)
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    stale = _webhook(api, datetime.now(UTC) - timedelta(minutes=10))
    assert_error(await api.anonymous.post("/webhooks/braintree", data=stale), 400, "stale_webhook")
    future = _webhook(api, datetime.now(UTC) + timedelta(minutes=10))
    assert_error(await api.anonymous.post("/webhooks/braintree", data=future), 400, "stale_webhook")


async def test_a_webhook_that_could_not_be_handled_is_not_taken_for_a_replay(api: Api) -> None:
    # A pending payment whose transaction the webhook names; Temporal is down in this app, so
    # nudging its workflow fails: Braintree's redelivery must be handled, not ignored.
    payment, _ = api.db.payments.insert(
        Payment(
            payment_id=str(uuid.uuid4()),
            merchant_id="acme",
            order_id="order-w",
            user_id="user-1",
            amount=1000,
            currency="USD",
            payment_method="bank_transfer",
        )
    )
    api.db.payments.complete(
        PaymentOutcome(
            payment.payment_id, succeeded=False, still_pending=True, transaction_id="tx-webhook"
        )
    )
    settled = _webhook(
        api, datetime.now(UTC), braintree.WebhookNotification.Kind.TransactionSettled, "tx-webhook"
    )
    for _ in range(2):
        answer = await api.anonymous.post("/webhooks/braintree", data=settled)
        assert_error(answer, 503, "service_unavailable")


PAYLOAD = {
    "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
    "data": base64.b64encode(b'"order-secret-1"').decode(),
}


async def test_codec_endpoint_round_trip(api: Api) -> None:
    encoded = await api.admin.post(
        "/codec/encode", json={"payloads": [PAYLOAD]}, headers={"X-Namespace": "default"}
    )
    assert encoded.status_code == 200, encoded.text
    [sealed] = encoded.json()["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
    assert b"order-secret-1" not in base64.b64decode(sealed["data"])
    decoded = await api.admin.post("/codec/decode", json=encoded.json())
    assert decoded.status_code == 200
    assert decoded.json()["payloads"] == [PAYLOAD]
    assert_error(
        await api.admin.post("/codec/decode", json={"payloads": "nope"}), 422, "invalid_request"
    )
    assert_error(
        await api.admin.post(
            "/codec/decode", json={"payloads": [PAYLOAD]}, headers={"X-Namespace": "other"}
        ),
        422,
        "invalid_request",
    )


async def test_codec_session_cookie_and_cors(api: Api) -> None:
    ui = "http://127.0.0.1:8233"
    preflight = await api.anonymous.options(
        "/codec/decode",
        headers={
            "Origin": ui,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == ui
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    evil = await api.anonymous.options(
        "/codec/decode",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in evil.headers
    # No CORS anywhere else.
    other = await api.anonymous.get("/healthz", headers={"Origin": ui})
    assert "Access-Control-Allow-Origin" not in other.headers

    assert_error(await api.acme.post("/codec/session"), 403, "forbidden")
    started = await api.admin.post("/codec/session")
    assert started.status_code == 204
    cookie = started.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/codec" in cookie and "SameSite=strict" in cookie
    browser = api.client(None)
    browser.cookies.set("payments_codec_session", started.cookies["payments_codec_session"])
    decoded = await browser.post(
        "/codec/decode", json={"payloads": [PAYLOAD]}, headers={"Origin": ui}
    )
    assert decoded.status_code == 200, decoded.text
    assert decoded.headers["Access-Control-Allow-Origin"] == ui
    # The session ends with its key.
    admin_id = (await api.admin.get("/admin/api-keys")).json()["items"]
    [admin_key] = [k for k in admin_id if k["role"] == "admin" and k["merchant_id"] is None]
    assert (await api.admin.delete(f"/admin/api-keys/{admin_key['key_id']}")).status_code == 204
    refused = await browser.post("/codec/decode", json={"payloads": [PAYLOAD]})
    assert_error(refused, 401, "unauthenticated")
    forged = api.client(None)
    forged.cookies.set("payments_codec_session", f"{admin_key['key_id']}.9999999999.forged")
    assert_error(await forged.post("/codec/decode", json={"payloads": []}), 401, "unauthenticated")
    await browser.aclose()
    await forged.aclose()


async def test_the_codec_login_page_is_served_but_not_part_of_the_api(api: Api) -> None:
    page = await api.anonymous.get("/codec/login")
    assert page.status_code == 200 and "admin" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    schema = (await api.anonymous.get("/openapi.json")).json()
    assert "/codec/login" not in schema["paths"] and "/codec/decode" in schema["paths"]
