"""Throwaway PostgreSQL databases for the tests and the benchmarks.

They are made on the server of ``TEST_POSTGRES_URL`` (an admin connection: it may create and
drop databases), by default the local server's ``postgres`` superuser.
"""

from __future__ import annotations

import os
import uuid

import psycopg
from sqlalchemy.engine import make_url

# An admin connection to a PostgreSQL server where the tests may create databases.
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_available() -> str | None:
    """None when usable, else why not."""
    try:
        with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}".splitlines()[0]


def create_postgres_database(prefix: str, *, template: str | None = None) -> tuple[str, str]:
    """Create a fresh database, empty or a copy of the database ``template`` (which nobody
    may be connected to); returns (its URL, its name)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    copy_of = f' TEMPLATE "{template}"' if template is not None else ""
    with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy_of}')
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    return url, name


def drop_postgres_database(name: str) -> None:
    with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
