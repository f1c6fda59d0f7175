"""Two completions of the same payment or refund at once (an activity retried while its first
attempt still runs): the outcome is recorded once.

Each completion is held just before it asks for the payment's row lock until the other has
got that far too, so both have read whatever they read before locking: the interleaving that
counted a refund twice on PostgreSQL, made deterministic. (On SQLite every transaction takes
the write lock when it begins, no statement asks FOR UPDATE, and the two run one after the
other.)"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from payments.config import DatabaseSettings
from payments.contracts import PaymentOutcome, RefundOutcome
from payments.db.database import Database
from payments.db.engine import create_db_engine
from payments.db.models import AuditEvent, Payment
from payments.vocabulary import RefundMethod
from tests.support.rows import payment_row, refund_row

T = TypeVar("T")


@contextmanager
def meeting_at_the_row_lock(database_url: str, parties: int = 2) -> Iterator[Database]:
    """A Database whose threads each wait, before their first ``SELECT … FOR UPDATE``, until
    ``parties`` threads have reached theirs."""
    engine = create_db_engine(DatabaseSettings(url=database_url))
    barrier = threading.Barrier(parties, timeout=10)
    arrived = threading.local()

    def before_execute(
        _conn: sa.Connection, _cursor: Any, statement: str, *_args: Any, **_kwargs: Any
    ) -> None:
        if "FOR UPDATE" in statement and not getattr(arrived, "done", False):
            arrived.done = True
            barrier.wait()

    sa.event.listen(engine, "before_cursor_execute", before_execute)
    try:
        yield Database(engine)
    finally:
        engine.dispose()


def twice_at_once(call: Callable[[], T]) -> list[T]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return [future.result() for future in [pool.submit(call), pool.submit(call)]]


def accepted_transitions(db: Database, payment_id: str, to_status: str) -> list[AuditEvent]:
    return [
        event
        for event in db.audit.trail(payment_id)
        if event.accepted and event.to_status == to_status
    ]


@pytest.fixture
def paid_payment(engine: sa.Engine) -> Payment:
    db = Database(engine)
    payment, _ = db.payments.insert(payment_row(amount=10_000))
    return db.payments.complete(
        PaymentOutcome(payment.payment_id, succeeded=True, transaction_id="tx-concurrent")
    )


def test_a_refund_completed_twice_at_once_is_counted_once(
    engine: sa.Engine, database_url: str, paid_payment: Payment
) -> None:
    refund, _ = Database(engine).refunds.reserve(
        refund_row(paid_payment, 1_000, reason="damaged item"),
        whole_remainder=False,
    )
    outcome = RefundOutcome(refund.refund_id, succeeded=True, method=RefundMethod.REFUND)

    with meeting_at_the_row_lock(database_url) as db:
        results = twice_at_once(lambda: db.refunds.complete(outcome))

    assert [stored.refunded_amount for _, stored in results] == [1_000, 1_000]
    stored = Database(engine).payments.get(paid_payment.payment_id)
    assert stored is not None and stored.refunded_amount == 1_000
    assert len(accepted_transitions(Database(engine), paid_payment.payment_id, "processed")) == 1


def test_a_payment_completed_twice_at_once_is_recorded_once(
    engine: sa.Engine, database_url: str
) -> None:
    db = Database(engine)
    payment, _ = db.payments.insert(payment_row(amount=4_999))
    outcome = PaymentOutcome(payment.payment_id, succeeded=True, transaction_id="tx-once")

    with meeting_at_the_row_lock(database_url) as racing:
        results = twice_at_once(lambda: racing.payments.complete(outcome))

    assert [stored.payment_status for stored in results] == ["success", "success"]
    assert len(accepted_transitions(db, payment.payment_id, "success")) == 1
