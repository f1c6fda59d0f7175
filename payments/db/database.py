"""The process's database: one repository per aggregate, all over one engine. Each
composition root builds it once; a class working on one aggregate is given that repository, a
class spanning several (the payment service, the ledger and reconciliation activities) the
Database."""

from __future__ import annotations

import sqlalchemy as sa

from payments.db.repositories.access import AccessRepository
from payments.db.repositories.analytics import AnalyticsRepository
from payments.db.repositories.audit import AuditRepository
from payments.db.repositories.exchange_rates import ExchangeRateRepository
from payments.db.repositories.fraud import FraudRepository
from payments.db.repositories.idempotency import IdempotencyKeyRepository
from payments.db.repositories.payment_methods import PaymentMethodRepository
from payments.db.repositories.payments import PaymentRepository
from payments.db.repositories.reconciliation import ReconciliationRepository
from payments.db.repositories.refunds import RefundRepository
from payments.db.repositories.webhooks import WebhookReceiptRepository


class Database:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self.payments = PaymentRepository(engine)
        self.analytics = AnalyticsRepository(engine)
        self.refunds = RefundRepository(engine)
        self.audit = AuditRepository(engine)
        self.idempotency_keys = IdempotencyKeyRepository(engine)
        self.payment_methods = PaymentMethodRepository(engine)
        self.exchange_rates = ExchangeRateRepository(engine)
        self.reconciliation = ReconciliationRepository(engine)
        self.webhook_receipts = WebhookReceiptRepository(engine)
        self.access = AccessRepository(engine)
        self.fraud = FraudRepository(engine)

    def ping(self) -> None:
        """Raises when the database does not answer (the readiness check)."""
        with self._engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
