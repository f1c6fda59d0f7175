"""Fixtures shared by every test package: databases on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from payments.config import DatabaseSettings
from payments.db.engine import create_db_engine
from payments.db.migrate import upgrade

# An admin connection to a PostgreSQL server where the tests may create databases.
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# CI sets this: a missing PostgreSQL is then a failure, not a skip.
REQUIRE_POSTGRES = os.environ.get("TEST_REQUIRE_POSTGRES") == "1"


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_available() -> str | None:
    """None when usable, else why not."""
    try:
        with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}".splitlines()[0]


def create_postgres_database(prefix: str) -> tuple[str, str]:
    """Create a fresh database; returns (its URL, its name)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    return url, name


def drop_postgres_database(name: str) -> None:
    with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def require_postgres() -> None:
    reason = postgres_available()
    if reason is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database, once per backend for the session."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "payments.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url
        return
    require_postgres()
    url, name = create_postgres_database("payments_test")
    try:
        upgrade(url)
        yield url
    finally:
        drop_postgres_database(name)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_db_engine(DatabaseSettings(url=database_url))
    yield engine
    engine.dispose()
