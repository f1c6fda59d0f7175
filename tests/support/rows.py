"""Rows that tests write straight into the database, as the service would have left them."""

from __future__ import annotations

import uuid

from payments.db.database import Database
from payments.db.models import StoredPaymentMethod
from payments.vocabulary import VaultStatus


def add_saved_method(
    db: Database,
    token_ciphertext: str,
    *,
    merchant_id: str = "default",
    method_id: str | None = None,
) -> str:
    """An active saved card of the merchant's user-1 holding ``token_ciphertext``, as a vault
    leaves it; returns its id."""
    method_id = method_id or str(uuid.uuid4())
    db.payment_methods.add(
        StoredPaymentMethod(
            payment_method_id=method_id,
            merchant_id=merchant_id,
            user_id="user-1",
            status=VaultStatus.ACTIVE,
            token_ciphertext=token_ciphertext,
            instrument_type="credit_card",
        )
    )
    return method_id
