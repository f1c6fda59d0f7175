"""The database pool covers the worker's activity threads and gives up before a ledger step's
start-to-close: a thread waiting for a connection fails its attempt (retried), it does not
time the step out."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.pool import QueuePool

from payments.config import DatabaseSettings
from payments.db.engine import create_db_engine
from workers.payment_worker import ACTIVITY_THREADS
from workflows.options import LEDGER


def test_the_pool_covers_the_activity_threads_and_gives_up_in_time(tmp_path: Path) -> None:
    settings = DatabaseSettings(url=f"sqlite:///{tmp_path / 'pool.db'}")
    engine = create_db_engine(settings)
    try:
        assert isinstance(engine.pool, QueuePool)
        assert engine.pool.size() + engine.pool._max_overflow >= ACTIVITY_THREADS
        assert engine.pool._timeout < LEDGER["start_to_close_timeout"].total_seconds()
    finally:
        engine.dispose()


def test_the_defaults_hold_for_postgresql_too() -> None:
    settings = DatabaseSettings(url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    engine = create_db_engine(settings)  # no connection is made until one is asked for
    assert isinstance(engine.pool, QueuePool)
    assert engine.pool.size() + engine.pool._max_overflow >= ACTIVITY_THREADS
    assert engine.pool._timeout < LEDGER["start_to_close_timeout"].total_seconds()
