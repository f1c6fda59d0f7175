"""Receipts of gateway webhook notifications, by digest: a replayed notification is
recognised and ignored."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from payments.db.models import WebhookReceipt
from payments.db.repositories.base import Repository


class WebhookReceiptRepository(Repository):
    def record(self, digest: str, kind: str, *, keep_after: datetime) -> bool:
        """Record a notification by digest; False if it was recorded before (a replay).
        Receipts older than ``keep_after`` are pruned: notifications that old are refused
        before they get here."""
        try:
            with self._transaction() as session:
                session.execute(
                    sa.delete(WebhookReceipt).where(col(WebhookReceipt.received_at) < keep_after)
                )
                session.add(WebhookReceipt(digest=digest, kind=kind[:64]))
            return True
        except IntegrityError:
            return False

    def forget(self, digest: str) -> None:
        """Undo ``record`` for a notification whose handling failed (its redelivery is then
        handled, not taken for a replay)."""
        with self._transaction() as session:
            session.execute(sa.delete(WebhookReceipt).where(col(WebhookReceipt.digest) == digest))
