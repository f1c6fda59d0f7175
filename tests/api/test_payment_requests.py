"""What the API refuses before anything is stored or started: amounts (of payments and
refunds) and exchange rates other than plain decimals, retries of a single-use nonce."""

from __future__ import annotations

import pytest

from tests.api.conftest import BODY, Api
from tests.api.test_access import assert_error, stored_payment
from tests.support.rows import add_saved_method

# Decimal() reads every one of these as a number.
NOT_PLAIN = ["1_000", "1e3", "1E+1", "\u0661\u0660", "\uff11\uff10", ".5", "10."]


@pytest.mark.parametrize("amount", NOT_PLAIN)
async def test_a_payment_amount_must_be_a_plain_decimal(api: Api, amount: str) -> None:
    response = await api.acme.post("/initiate-payment", json={**BODY, "amount": amount})
    assert_error(response, 422, "invalid_amount")
    assert response.json()["error"]["field"] == "amount"
    assert (await api.admin.get("/payments")).json()["items"] == []


@pytest.mark.parametrize("amount", NOT_PLAIN)
async def test_a_refund_amount_must_be_a_plain_decimal(api: Api, amount: str) -> None:
    payment_id = stored_payment(api, "acme")
    response = await api.acme.post(
        "/refund", json={"payment_id": payment_id, "amount": amount, "reason": "x"}
    )
    assert_error(response, 422, "invalid_amount")
    assert response.json()["error"]["field"] == "amount"
    assert (await api.admin.get("/refunds")).json()["items"] == []


@pytest.mark.parametrize("rate", NOT_PLAIN)
async def test_an_exchange_rate_must_be_a_plain_decimal(api: Api, rate: str) -> None:
    response = await api.admin.put("/exchange-rates/SEK/USD", json={"rate": rate})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "rate"
    assert (await api.admin.get("/exchange-rates/SEK/USD")).status_code == 404


async def test_retries_need_a_saved_payment_method(api: Api) -> None:
    # A nonce is single use: the retry of a soft decline could never charge it again.
    refused = await api.acme.post("/initiate-payment", json={**BODY, "retry": True})
    assert_error(refused, 422, "invalid_request")
    assert refused.json()["error"]["field"] == "payment_method_id"
    assert "retry" in refused.json()["error"]["message"]
    assert (await api.admin.get("/payments")).json()["items"] == []

    method_id = add_saved_method(api.db, "v2:x:y", merchant_id="acme")
    saved = {**BODY, "payment_token": None, "payment_method_id": method_id, "retry": True}
    # Valid: only the unreachable Temporal stops it (and nothing stays behind).
    assert_error(await api.acme.post("/initiate-payment", json=saved), 503, "service_unavailable")
