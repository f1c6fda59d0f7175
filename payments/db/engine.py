"""Engine factory: SQLite (embedded default) or PostgreSQL, configured for safe concurrency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from payments.config import DatabaseSettings

# Execution option of a connection whose transactions only read (Repository._reading).
READ_ONLY = "payments_read_only"


def create_db_engine(settings: DatabaseSettings) -> sa.Engine:
    """Build the process's engine. Called once, by a composition root.

    SQLite: WAL (readers don't block the writer), a busy timeout instead of instant
    "database is locked", and every transaction opened with BEGIN IMMEDIATE so that a
    read-then-write (the refund cap) holds the write lock from its first read: the SQLite
    equivalent of PostgreSQL's SELECT ... FOR UPDATE. A transaction that only reads (the
    ``READ_ONLY`` execution option) begins DEFERRED instead: in WAL it reads the last commit
    without queueing behind writers (an API key's lookup, a status read, the fraud rules' read).
    """
    url = make_url(settings.url)
    if url.get_backend_name() != "sqlite":
        # A database that accepts connections but never answers (a hung server, a network
        # dropping packets) must fail fast, not hang: the API then answers 503 and a ledger
        # activity fails its attempt (Temporal retries) instead of holding a thread forever.
        return sa.create_engine(
            url,
            echo=settings.echo,
            pool_pre_ping=True,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout_seconds,
            connect_args={
                "connect_timeout": settings.connect_timeout_seconds,
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
            },
        )

    pool: dict[str, Any] = {}
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # A file: a queue pool like PostgreSQL's (an in-memory database has one connection).
        pool = {
            "pool_size": settings.pool_size,
            "max_overflow": settings.max_overflow,
            "pool_timeout": settings.pool_timeout_seconds,
        }
    engine = sa.create_engine(
        url,
        echo=settings.echo,
        connect_args={"check_same_thread": False, "timeout": 30},
        **pool,
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so "begin" below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
