"""What every repository shares: one short transaction per call, the payment row lock that
serialises changes to a payment and its refunds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlmodel import Session, select

from payments.db.engine import READ_ONLY
from payments.db.models import Payment
from payments.errors import NotFound


class Repository:
    """Every public method of a repository runs in one transaction of its own; rows it returns
    stay readable after the commit."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._reader = engine.execution_options(**{READ_ONLY: True})

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        """A transaction that only reads. On SQLite it begins DEFERRED: a snapshot of the
        last commit (WAL), without waiting for the write lock that a writer holds, where
        ``_transaction`` begins IMMEDIATE. The same committed data either way; PostgreSQL
        reads committed data in both."""
        with Session(self._reader, expire_on_commit=False) as session, session.begin():
            yield session


def locked_payment(session: Session, payment_id: str) -> Payment:
    """The payment, locked until the transaction ends: SELECT … FOR UPDATE on PostgreSQL; on
    SQLite every transaction already holds the write lock (the engine begins them IMMEDIATE).
    Raises NotFound."""
    query = select(Payment).where(Payment.payment_id == payment_id)
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    payment = session.exec(query).first()
    if payment is None:
        raise NotFound(f"payment {payment_id} not found", field="payment_id")
    return payment
