"""Request bodies that several test packages send."""

from __future__ import annotations

# A valid POST /initiate-payment body. A payment_initiation message carries the same fields,
# plus the merchant and an idempotency key.
PAYMENT_BODY = {
    "order_id": "order-1",
    "user_id": "user-1",
    "amount": "10.00",
    "currency": "USD",
    "payment_method": "credit_card",
    "payment_token": "fake-valid-nonce",
}
