"""Rows that tests write straight into the database, as the service would have left them."""

from __future__ import annotations

import uuid
from typing import Any

from payments.db.database import Database
from payments.db.models import Payment, Refund, StoredPaymentMethod
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


def payment_row(
    *,
    amount: int = 4999,
    currency: str = "USD",
    merchant_id: str = "default",
    user_id: str = "user-1",
    order_id: str | None = None,
    **columns: Any,
) -> Payment:
    """A card payment of a new order (or of ``order_id``) as the API stores it before its
    workflow runs."""
    return Payment(
        payment_id=str(uuid.uuid4()),
        merchant_id=merchant_id,
        order_id=order_id or f"order-{uuid.uuid4().hex[:8]}",
        user_id=user_id,
        amount=amount,
        currency=currency,
        payment_method="credit_card",
        **columns,
    )


def refund_row(payment: Payment, amount: int, *, reason: str = "test", **columns: Any) -> Refund:
    """A refund of ``amount`` (minor units of the payment's currency) asked for now."""
    return Refund(
        refund_id=str(uuid.uuid4()),
        merchant_id=payment.merchant_id,
        payment_id=payment.payment_id,
        amount=amount,
        currency=payment.currency,
        reason=reason,
        **columns,
    )
