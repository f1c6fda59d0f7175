"""A read does not queue behind a writer: on SQLite a transaction that only reads begins
DEFERRED and reads the last commit (WAL) while another connection holds the write lock; a
write still waits for it (SQLite only: PostgreSQL has no database-wide write lock)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from payments.config import DatabaseSettings
from payments.db.engine import create_db_engine
from payments.db.repositories.access import AccessRepository
from payments.db.repositories.fraud import FraudRepository
from payments.db.repositories.payments import PaymentRepository

HOLD_SECONDS = 2.0


@pytest.fixture
def sqlite_engine(database_url: str) -> Iterator[sa.Engine]:
    if not database_url.startswith("sqlite"):
        pytest.skip("the write lock that reads used to wait for is SQLite's")
    engine = create_db_engine(DatabaseSettings(url=database_url))
    yield engine
    engine.dispose()


def _hold_the_write_lock(engine: sa.Engine, held: threading.Event) -> None:
    """Another writer: a transaction holding SQLite's write lock for HOLD_SECONDS."""
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM payments WHERE payment_id = 'nobody'")
        held.set()
        time.sleep(HOLD_SECONDS)


def _while_a_writer_holds_the_lock(engine: sa.Engine, call: Callable[[], object]) -> float:
    """How long ``call`` took while another connection held the write lock."""
    held = threading.Event()
    writer = threading.Thread(target=_hold_the_write_lock, args=(engine, held))
    writer.start()
    try:
        assert held.wait(5)
        started = time.monotonic()
        call()
        return time.monotonic() - started
    finally:
        writer.join()


def test_reads_do_not_wait_for_the_write_lock(sqlite_engine: sa.Engine) -> None:
    payments = PaymentRepository(sqlite_engine)
    keys = AccessRepository(sqlite_engine)
    assert _while_a_writer_holds_the_lock(sqlite_engine, lambda: payments.get("none")) < 1.0
    assert _while_a_writer_holds_the_lock(sqlite_engine, lambda: keys.get_key("none")) < 1.0
    fraud = FraudRepository(sqlite_engine)

    def the_fraud_steps_reads() -> None:
        with fraud.reads() as reads:
            reads.earlier_open_payment("o", this=None, payment_id="p", merchant_id="m")

    assert _while_a_writer_holds_the_lock(sqlite_engine, the_fraud_steps_reads) < 1.0


def test_a_write_still_waits_for_the_write_lock(sqlite_engine: sa.Engine) -> None:
    payments = PaymentRepository(sqlite_engine)
    waited = _while_a_writer_holds_the_lock(
        sqlite_engine, lambda: payments.discard_unstarted("none")
    )
    assert waited > HOLD_SECONDS / 2
