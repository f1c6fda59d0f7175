"""Exchange rates: appended, never changed; the newest one of a pair is the current one."""

from __future__ import annotations

from sqlmodel import col, select

from payments.db.models import ExchangeRate
from payments.db.repositories.base import Repository


class ExchangeRateRepository(Repository):
    def add(self, rate: ExchangeRate) -> ExchangeRate:
        with self._transaction() as session:
            session.add(rate)
        return rate

    def current(self, base: str, quote: str) -> ExchangeRate | None:
        """The newest rate from ``base`` to ``quote`` (by its as_of, then by insertion)."""
        with self._reading() as session:
            return session.exec(
                select(ExchangeRate)
                .where(ExchangeRate.base == base, ExchangeRate.quote == quote)
                .order_by(col(ExchangeRate.as_of).desc(), col(ExchangeRate.rate_id).desc())
                .limit(1)
            ).first()
