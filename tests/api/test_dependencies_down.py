"""The API when what it depends on is down: a 503 with Retry-After, never a 500, nothing
half-written. In-process (ASGI), against a real SQLite database and a Temporal address where
nothing listens."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.main import create_app
from payments.config import (
    DatabaseSettings,
    KafkaSettings,
    PolicySettings,
    Settings,
    TemporalSettings,
)
from payments.db.migrate import upgrade


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    url = f"sqlite:///{tmp_path / 'payments.db'}"
    upgrade(url)
    settings = Settings(
        database=DatabaseSettings(url=url),
        temporal=TemporalSettings(address=f"127.0.0.1:{closed_port()}"),
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{closed_port()}"),
        policy=PolicySettings(dev_token_key_file=tmp_path / "key"),
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


BODY = {
    "order_id": "order-1",
    "user_id": "user-1",
    "amount": "10.00",
    "currency": "USD",
    "payment_method": "credit_card",
    "payment_token": "fake-valid-nonce",
}


async def test_payment_is_not_half_written_when_temporal_is_down(api: httpx.AsyncClient) -> None:
    response = await api.post("/initiate-payment", json=BODY)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    assert response.json()["error"]["type"] == "service_unavailable"
    # Temporal was never reached, so the workflow certainly did not start: the row is gone.
    assert (await api.get("/payments")).json()["items"] == []
    keyed = await api.post("/initiate-payment", json=BODY, headers={"Idempotency-Key": "k-1"})
    assert keyed.status_code == 503
    assert (await api.get("/payments")).json()["items"] == []


async def test_saving_a_payment_method_is_a_503(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/payment-methods", json={"user_id": "user-1", "payment_token": "fake-valid-nonce"}
    )
    assert response.status_code == 503, response.text


async def test_readiness_names_what_is_down(api: httpx.AsyncClient) -> None:
    response = await api.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["temporal"].startswith("unavailable")
    assert checks["kafka"].startswith("unavailable")


async def test_client_mistakes_stay_4xx_with_dependencies_down(api: httpx.AsyncClient) -> None:
    bad = await api.post("/initiate-payment", json={**BODY, "amount": "-1"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "amount"
    assert (await api.get("/payment/nope")).status_code == 404
