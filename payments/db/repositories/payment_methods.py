"""Saved payment methods: pending while the gateway vaults them, then active (the token kept
encrypted) or failed; deleted softly, since payments keep their reference."""

from __future__ import annotations

from sqlmodel import col, select

from payments.db import columns
from payments.db.columns import cut
from payments.db.models import StoredPaymentMethod, utcnow
from payments.db.repositories.base import Repository
from payments.errors import NotFound
from payments.gateway.types import InstrumentDetails
from payments.vocabulary import VaultStatus


class PaymentMethodRepository(Repository):
    def add_pending(
        self, payment_method_id: str, *, merchant_id: str, user_id: str
    ) -> StoredPaymentMethod:
        """The row a vault starts with (status pending), before the gateway is asked."""
        return self.add(
            StoredPaymentMethod(
                payment_method_id=payment_method_id,
                merchant_id=merchant_id,
                user_id=user_id,
                status=VaultStatus.PENDING,
            )
        )

    def add(self, method: StoredPaymentMethod) -> StoredPaymentMethod:
        with self._transaction() as session:
            session.add(method)
        return method

    def activate(
        self,
        payment_method_id: str,
        *,
        gateway_customer_id: str,
        token_ciphertext: str,
        instrument: InstrumentDetails,
    ) -> StoredPaymentMethod:
        """The gateway vaulted it: store its token (encrypted) and what may be shown. Only a
        pending method becomes active: one already active stays as it is (a retried activity),
        and one failed meanwhile (the vault was given up, the customer told so) stays failed.
        The row as it is now."""
        with self._transaction() as session:
            stored = session.get(StoredPaymentMethod, payment_method_id)
            if stored is None:
                raise NotFound(f"payment method {payment_method_id} not found")
            if stored.status == VaultStatus.PENDING:
                stored.status = VaultStatus.ACTIVE
                stored.gateway_customer_id = gateway_customer_id
                stored.token_ciphertext = token_ciphertext
                stored.instrument_type = instrument.instrument_type
                stored.brand = instrument.brand
                stored.last4 = instrument.last4
                stored.expiration = instrument.expiration
                stored.wallet_type = instrument.wallet
                stored.display = instrument.display
                session.add(stored)
        return stored

    def fail(
        self, payment_method_id: str, *, code: str | None, message: str | None
    ) -> StoredPaymentMethod | None:
        """The gateway refused the nonce: the method stays unusable, with the reason. Only a
        pending method fails (one that became active meanwhile stays active)."""
        with self._transaction() as session:
            stored = session.get(StoredPaymentMethod, payment_method_id)
            if stored is not None and stored.status == VaultStatus.PENDING:
                stored.status = VaultStatus.FAILED
                stored.failure_code = (code or "refused")[: columns.VAULT_FAILURE_CODE]
                stored.failure_message = cut(message or None, columns.FAILURE_MESSAGE)
                session.add(stored)
        return stored

    def get(self, payment_method_id: str) -> StoredPaymentMethod | None:
        with self._reading() as session:
            return session.get(StoredPaymentMethod, payment_method_id)

    def active_of_user(self, user_id: str, *, merchant_id: str) -> list[StoredPaymentMethod]:
        """A user's active saved methods at one merchant, newest first."""
        with self._reading() as session:
            return list(
                session.exec(
                    select(StoredPaymentMethod)
                    .where(
                        StoredPaymentMethod.merchant_id == merchant_id,
                        StoredPaymentMethod.user_id == user_id,
                        StoredPaymentMethod.status == VaultStatus.ACTIVE,
                        col(StoredPaymentMethod.deleted_at).is_(None),
                    )
                    .order_by(col(StoredPaymentMethod.created_at).desc())
                ).all()
            )

    def delete(self, payment_method_id: str) -> StoredPaymentMethod | None:
        """Soft delete (idempotent); returns the row, None if unknown."""
        with self._transaction() as session:
            stored = session.get(StoredPaymentMethod, payment_method_id)
            if stored is not None and stored.deleted_at is None:
                stored.deleted_at = utcnow()
                session.add(stored)
        return stored
