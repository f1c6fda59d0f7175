"""The API in-process (ASGI) against a real, migrated SQLite database (``api_on_each_database``:
on SQLite and on PostgreSQL), with real keys; Temporal and Kafka addresses where nothing
listens (what these tests check is decided before either is needed)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from api.main import create_app
from payments.config import (
    ApiSettings,
    DatabaseSettings,
    KafkaSettings,
    PolicySettings,
    Settings,
    TemporalSettings,
)
from payments.db.database import Database
from payments.db.engine import create_db_engine
from payments.db.migrate import upgrade
from payments.db.models import Role
from tests.support.requests import PAYMENT_BODY

BODY = PAYMENT_BODY  # a valid POST /initiate-payment body


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


def api_settings(tmp_path: Path, database_url: str | None = None, **api: object) -> Settings:
    """Settings of an app on ``database_url`` (migrated), by default a new SQLite file."""
    url = database_url
    if url is None:
        url = f"sqlite:///{tmp_path / 'payments.db'}"
        upgrade(url)
    return Settings(
        database=DatabaseSettings(url=url),
        temporal=TemporalSettings(
            address=f"127.0.0.1:{closed_port()}",
            dev_payload_keys_file=tmp_path / "payload-keys",
        ),
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{closed_port()}"),
        policy=PolicySettings(
            dev_token_keys_file=tmp_path / "token-keys", dev_token_key_file=tmp_path / "fernet"
        ),
        api=ApiSettings(**api),  # type: ignore[arg-type]
    )


@dataclass
class Api:
    """Clients of one app: without a key, with a checkout key of merchant "acme", with a
    checkout key of merchant "globex", and with an admin key."""

    app: FastAPI
    settings: Settings
    engine: sa.Engine
    db: Database
    anonymous: httpx.AsyncClient
    acme: httpx.AsyncClient
    globex: httpx.AsyncClient
    admin: httpx.AsyncClient
    keys: dict[str, str]

    def client(self, key: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://api", headers=headers
        )


async def _open(settings: Settings) -> AsyncIterator[Api]:
    engine = create_db_engine(settings.database)
    db = Database(engine)
    keys = {
        "acme": db.access.create_key(role=Role.CHECKOUT, merchant_id="acme", created_by=None)[
            1
        ].secret,
        "globex": db.access.create_key(role=Role.CHECKOUT, merchant_id="globex", created_by=None)[
            1
        ].secret,
        "admin": db.access.create_key(role=Role.ADMIN, merchant_id=None, created_by=None)[1].secret,
    }
    app = create_app(settings)
    api = Api(
        app=app,
        settings=settings,
        engine=engine,
        db=db,
        anonymous=httpx.AsyncClient(),
        acme=httpx.AsyncClient(),
        globex=httpx.AsyncClient(),
        admin=httpx.AsyncClient(),
        keys=keys,
    )
    api.anonymous = api.client(None)
    api.acme = api.client(keys["acme"])
    api.globex = api.client(keys["globex"])
    api.admin = api.client(keys["admin"])
    try:
        yield api
    finally:
        for client in (api.anonymous, api.acme, api.globex, api.admin):
            await client.aclose()
        engine.dispose()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async for opened in _open(api_settings(tmp_path)):
        yield opened


@pytest.fixture
async def api_on_each_database(tmp_path: Path, database_url: str) -> AsyncIterator[Api]:
    """The API on each backend's session database (PostgreSQL refuses a string longer than
    its column, where SQLite stores it)."""
    async for opened in _open(api_settings(tmp_path, database_url)):
        yield opened


@pytest.fixture
async def limited_api(tmp_path: Path) -> AsyncIterator[Api]:
    """Five requests a second per key, three failed authentications per address."""
    settings = api_settings(tmp_path, rate_limit="5/second", unauthenticated_rate_limit="3/minute")
    async for opened in _open(settings):
        yield opened
