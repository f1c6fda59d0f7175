"""Fixtures shared by every test package: databases on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from devtools.postgres import create_postgres_database, drop_postgres_database, postgres_available
from payments.config import DatabaseSettings
from payments.db.engine import create_db_engine
from payments.db.migrate import upgrade

# CI sets this: a missing PostgreSQL is then a failure, not a skip.
REQUIRE_POSTGRES = os.environ.get("TEST_REQUIRE_POSTGRES") == "1"


def require_postgres() -> None:
    reason = postgres_available()
    if reason is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(reason)
        pytest.skip(reason)


@contextmanager
def migrated_database(
    backend: str, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[str]:
    """A new database on ``backend`` (one of BACKENDS), migrated; yields its URL and drops it
    after. PostgreSQL is skipped when unreachable, unless REQUIRE_POSTGRES."""
    if backend == "sqlite":
        path: Path = tmp_path_factory.mktemp(name) / "payments.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url
        return
    require_postgres()
    url, database = create_postgres_database(f"{name}_test")
    try:
        upgrade(url)
        yield url
    finally:
        drop_postgres_database(database)


@contextmanager
def database_copy(template_url: str, directory: Path) -> Iterator[str]:
    """A database of its own for one test: a copy of the migrated database at
    ``template_url`` (nobody may be connected to it), made in milliseconds instead of a
    migration; yields its URL and drops it after. SQLite files go into ``directory``."""
    url = sa.make_url(template_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        path = directory / "payments.db"
        # The backup API, not a file copy: it takes what the WAL holds too.
        with (
            closing(sqlite3.connect(url.database)) as source,
            closing(sqlite3.connect(path)) as target,
        ):
            source.backup(target)
        yield f"sqlite:///{path}"
        return
    assert url.database is not None
    copy_url, copy_name = create_postgres_database("copy", template=url.database)
    try:
        yield copy_url
    finally:
        drop_postgres_database(copy_name)


BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database, once per backend for the session."""
    with migrated_database(request.param, tmp_path_factory, "payments") as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_db_engine(DatabaseSettings(url=database_url))
    yield engine
    engine.dispose()
