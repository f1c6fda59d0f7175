"""Idempotency keys: a merchant's key maps to exactly one payment or refund until it expires.

The record is written in the transaction that writes the row it names (primary key
merchant, scope, key), so of two requests racing with one key only one row survives; the
helpers below take the caller's session for that reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from payments.db.models import IdempotencyRecord, utcnow
from payments.db.repositories.base import Repository
from payments.errors import IdempotencyKeyReused

PAYMENT_SCOPE = "payment"
REFUND_SCOPE = "refund"


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """An Idempotency-Key sent with a request: who sent it, the key, and a hash of the request
    it came with (the same key with another request is refused)."""

    merchant_id: str
    key: str
    fingerprint: str
    ttl_seconds: float


def claimed_resource(session: Session, scope: str, claim: IdempotencyClaim) -> str | None:
    """The id an unexpired key names, None if the key is unused (or has expired). Raises
    IdempotencyKeyReused when the key came with another request."""
    record = session.get(IdempotencyRecord, (claim.merchant_id, scope, claim.key))
    if record is None or record.expires_at <= utcnow():
        return None
    if record.request_fingerprint != claim.fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request",
            field="Idempotency-Key",
        )
    return record.resource_id


def claim_key(session: Session, scope: str, claim: IdempotencyClaim, resource_id: str) -> None:
    """Record the key for ``resource_id``; an expired record of the same key is replaced (the
    key starts something new). A live one makes the flush raise IntegrityError."""
    now = utcnow()
    session.execute(
        sa.delete(IdempotencyRecord).where(
            col(IdempotencyRecord.merchant_id) == claim.merchant_id,
            col(IdempotencyRecord.scope) == scope,
            col(IdempotencyRecord.key) == claim.key,
            col(IdempotencyRecord.expires_at) <= now,
        )
    )
    session.add(
        IdempotencyRecord(
            merchant_id=claim.merchant_id,
            scope=scope,
            key=claim.key,
            resource_id=resource_id,
            request_fingerprint=claim.fingerprint,
            created_at=now,
            expires_at=now + timedelta(seconds=claim.ttl_seconds),
        )
    )
    session.flush()


def release_key(session: Session, scope: str, resource_id: str) -> None:
    """Forget the key that names ``resource_id`` (a retry with it starts anew)."""
    session.execute(
        sa.delete(IdempotencyRecord).where(
            col(IdempotencyRecord.scope) == scope,
            col(IdempotencyRecord.resource_id) == resource_id,
        )
    )


class IdempotencyKeyRepository(Repository):
    def purge_expired(self, *, limit: int = 1000) -> int:
        """Delete up to ``limit`` expired records (housekeeping; a lookup ignores them)."""
        with self._transaction() as session:
            keys = session.exec(
                select(IdempotencyRecord)
                .where(col(IdempotencyRecord.expires_at) <= utcnow())
                .limit(limit)
            ).all()
            for record in keys:
                session.delete(record)
            return len(keys)
