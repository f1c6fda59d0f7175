"""Merchants and API keys: creating, listing, revoking, and resolving a secret to its key."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from payments.access import NewSecret, Principal, key_id_of, new_secret, secret_matches
from payments.db.models import ApiKey, Merchant, Role, utcnow
from payments.db.repositories.base import Repository


class AccessRepository(Repository):
    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(engine)
        # Merchants are never deleted: one seen is remembered (one read less per payment).
        self._known_merchants: set[str] = set()

    def create_key(
        self, *, role: Role, merchant_id: str | None, created_by: str | None
    ) -> tuple[ApiKey, NewSecret]:
        """A new key; the first key naming a merchant creates that merchant (in the same
        transaction). Returns the stored key and its secret, which is not kept."""
        secret = new_secret()
        key = ApiKey(
            key_id=secret.key_id,
            merchant_id=merchant_id,
            role=role,
            secret_hash=secret.secret_hash,
            created_by=created_by,
        )
        for _ in range(2):  # a concurrent first key for the same merchant may create it first
            try:
                with self._transaction() as session:
                    if merchant_id is not None and session.get(Merchant, merchant_id) is None:
                        session.add(Merchant(merchant_id=merchant_id))
                        session.flush()
                    session.add(key)
                return key, secret
            except IntegrityError:
                continue
        raise RuntimeError("could not create the API key")  # pragma: no cover

    def list_keys(self, merchant_id: str | None = None) -> list[ApiKey]:
        query = select(ApiKey).order_by(col(ApiKey.created_at).desc(), col(ApiKey.key_id))
        if merchant_id is not None:
            query = query.where(ApiKey.merchant_id == merchant_id)
        with self._reading() as session:
            return list(session.exec(query).all())

    def get_key(self, key_id: str) -> ApiKey | None:
        with self._reading() as session:
            return session.get(ApiKey, key_id)

    def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke at once (idempotent); None for an unknown key."""
        with self._transaction() as session:
            key = session.get(ApiKey, key_id)
            if key is not None and key.revoked_at is None:
                key.revoked_at = utcnow()
                session.add(key)
        return key

    def authenticate(self, secret: str) -> Principal | None:
        """The key a secret belongs to, if it is well-formed, known, matches and is not
        revoked; None otherwise (the caller answers 401 without saying which)."""
        key_id = key_id_of(secret)
        if key_id is None:
            return None
        key = self.get_key(key_id)
        if key is None or key.revoked_at is not None:
            return None
        if not secret_matches(secret, key.secret_hash):
            return None
        return Principal(key_id=key.key_id, role=Role(key.role), merchant_id=key.merchant_id)

    def merchant_exists(self, merchant_id: str) -> bool:
        if merchant_id in self._known_merchants:
            return True
        with self._reading() as session:
            found = session.get(Merchant, merchant_id) is not None
        if found:
            self._known_merchants.add(merchant_id)
        return found

    def ensure_merchant(self, merchant_id: str) -> None:
        try:
            with self._transaction() as session:
                if session.get(Merchant, merchant_id) is None:
                    session.add(Merchant(merchant_id=merchant_id))
        except IntegrityError:
            pass  # created concurrently
