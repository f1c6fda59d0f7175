"""Request shapes shared by the HTTP API and the Kafka consumer (one validation for both)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints

from payments.db.models import PaymentMethod


def _decimal_string(value: Any) -> Any:
    # JSON numbers with a fraction arrive as floats, which cannot hold 0.1 exactly: refuse
    # them rather than charge a rounded amount. Whole numbers are unambiguous.
    if isinstance(value, bool):
        raise ValueError('amount must be a decimal string such as "49.99"')
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError('amount must be a decimal string such as "49.99", not a JSON float')
    return value


Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
AmountString = Annotated[
    str,
    BeforeValidator(_decimal_string),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
]
CurrencyCode = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{3}$")
]


class InitiatePaymentIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "order_id": "order-1001",
                    "user_id": "user-42",
                    "amount": "49.99",
                    "currency": "USD",
                    "payment_method": "credit_card",
                    "payment_token": "fake-valid-nonce",
                }
            ]
        },
    )

    order_id: Identifier
    user_id: Identifier
    # Required unless the Order Service is configured (then the order decides; if given,
    # they must match it).
    amount: AmountString | None = None
    currency: CurrencyCode | None = None
    payment_method: PaymentMethod
    # A gateway nonce from the client-side SDK (never a card number), or the id of a payment
    # method saved with POST /payment-methods: exactly one of the two.
    payment_token: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    payment_method_id: Identifier | None = None
    # Merchant-initiated payments (subscriptions): retry soft declines on a schedule.
    retry: bool = False


class PaymentInitiationMessage(InitiatePaymentIn):
    """A message on ``payment_initiation``: the fields of POST /initiate-payment plus the
    idempotency key that makes a redelivered message start nothing new."""

    model_config = ConfigDict(extra="ignore")

    idempotency_key: Annotated[
        str | None, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)
    ] = None
