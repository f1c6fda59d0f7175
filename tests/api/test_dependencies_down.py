"""The API when what it depends on is down: a 503 with Retry-After, never a 500, nothing
half-written. In-process (ASGI), against a real SQLite database and a Temporal address where
nothing listens."""

from __future__ import annotations

from sqlmodel import Session, select

from payments.db.models import StoredPaymentMethod
from tests.api.conftest import BODY, Api


async def test_payment_is_not_half_written_when_temporal_is_down(api: Api) -> None:
    client = api.acme
    response = await client.post("/initiate-payment", json=BODY)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    assert response.json()["error"]["type"] == "service_unavailable"
    # Temporal was never reached, so the workflow certainly did not start: the row is gone.
    assert (await client.get("/payments")).json()["items"] == []
    keyed = await client.post("/initiate-payment", json=BODY, headers={"Idempotency-Key": "k-1"})
    assert keyed.status_code == 503
    assert (await client.get("/payments")).json()["items"] == []


async def test_saving_a_payment_method_is_a_503(api: Api) -> None:
    response = await api.acme.post(
        "/payment-methods", json={"user_id": "user-1", "payment_token": "fake-valid-nonce"}
    )
    assert response.status_code == 503, response.text
    # Nothing half-written: the method whose vault never started is marked failed, not left
    # pending for ever.
    with Session(api.engine) as session:
        [method] = session.exec(select(StoredPaymentMethod)).all()
    assert (method.status, method.failure_code) == ("failed", "not_started")


async def test_readiness_names_what_is_down(api: Api) -> None:
    response = await api.anonymous.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["temporal"].startswith("unavailable")
    assert checks["kafka"].startswith("unavailable")


async def test_client_mistakes_stay_4xx_with_dependencies_down(api: Api) -> None:
    bad = await api.acme.post("/initiate-payment", json={**BODY, "amount": "-1"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "amount"
    assert (await api.acme.get("/payment/nope")).status_code == 404
