"""Input that is stored has its column's width: one character more is a 422 naming the field,
never a 500 from a database that refuses it (PostgreSQL does, SQLite would store it); input
of exactly the width is stored on both."""

from __future__ import annotations

import uuid

import httpx

from payments.contracts import PaymentOutcome
from payments.db import columns
from tests.api.conftest import BODY, Api
from tests.support.rows import payment_row

# Where nothing listens: a payment or refund that was stored is answered 503 (and removed).
STORED_BUT_NOT_STARTED = 503


def assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field, response.text


def paid_payment(api: Api) -> str:
    payment, _ = api.db.payments.insert(payment_row(merchant_id="acme", amount=4999))
    api.db.payments.complete(
        PaymentOutcome(payment.payment_id, succeeded=True, transaction_id="tx-bounded")
    )
    return payment.payment_id


async def test_an_exchange_rate_longer_than_its_column_is_a_422(api_on_each_database: Api) -> None:
    api = api_on_each_database
    too_long = "0." + "1" * (columns.EXCHANGE_RATE - 1)
    assert_refused(await api.admin.put("/exchange-rates/SEK/USD", json={"rate": too_long}), "rate")
    longest = "1" * 12 + "." + "1" * 18  # the most places a rate may have
    stored = await api.admin.put(
        "/exchange-rates/SEK/USD", json={"rate": longest, "override": True}
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["rate"] == longest


async def test_payment_ids_and_keys_of_their_columns_width(api_on_each_database: Api) -> None:
    api = api_on_each_database
    widest = {
        **BODY,
        "order_id": "o" * (columns.CHECKOUT_ID - 8) + uuid.uuid4().hex[:8],
        "user_id": "u" * columns.CHECKOUT_ID,
    }
    key = {"Idempotency-Key": "k" * (columns.IDEMPOTENCY_KEY - 8) + uuid.uuid4().hex[:8]}
    stored = await api.acme.post("/initiate-payment", json=widest, headers=key)
    assert stored.status_code == STORED_BUT_NOT_STARTED, stored.text

    for field in ("order_id", "user_id"):
        body = {**widest, field: "x" * (columns.CHECKOUT_ID + 1)}
        assert_refused(await api.acme.post("/initiate-payment", json=body), field)
    too_long_key = {"Idempotency-Key": "k" * (columns.IDEMPOTENCY_KEY + 1)}
    refused = await api.acme.post("/initiate-payment", json=BODY, headers=too_long_key)
    assert refused.status_code == 422, refused.text


async def test_a_refund_reason_of_its_columns_width(api_on_each_database: Api) -> None:
    api = api_on_each_database
    payment_id = paid_payment(api)
    reason = "r" * columns.REASON
    stored = await api.acme.post("/refund", json={"payment_id": payment_id, "reason": reason})
    assert stored.status_code == STORED_BUT_NOT_STARTED, stored.text

    assert_refused(
        await api.acme.post("/refund", json={"payment_id": payment_id, "reason": reason + "r"}),
        "reason",
    )
