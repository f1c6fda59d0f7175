"""Request shapes shared by the HTTP API and the Kafka consumer (one validation for both).

Every string field refuses control characters and anything that looks like a card number
(``card_number_not_allowed``, never echoing the value): the service takes gateway nonces and
ids, never card data. Tokens, payment-method ids and idempotency keys are printable ASCII of
bounded length.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from payments.card_data import contains_card_number
from payments.db import columns
from payments.vocabulary import PaymentMethod

CARD_NUMBER_MESSAGE = (
    "looks like a card number: card data is never accepted; tokenize the card with the "
    "gateway's client SDK and send its nonce"
)
MERCHANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def _no_card_number(value: str) -> str:
    if contains_card_number(value):
        raise PydanticCustomError("card_number_not_allowed", CARD_NUMBER_MESSAGE)
    return value


def _no_control_characters(value: str) -> str:
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise PydanticCustomError("invalid_characters", "control characters are not allowed")
    return _no_card_number(value)


def _printable_ascii(value: str) -> str:
    if not all(0x20 <= ord(c) < 0x7F for c in value):
        raise PydanticCustomError(
            "invalid_characters", "only printable ASCII characters are allowed"
        )
    return _no_card_number(value)


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


# Ids the checkout chooses (orders, users): any text without control characters. Stored
# values are bounded by their columns' widths: longer ones are a 422 here, never a database
# error later (PostgreSQL refuses them, SQLite would not).
Identifier = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=columns.CHECKOUT_ID),
    AfterValidator(_no_control_characters),
]
# An operator's note on a review: may be empty.
Note = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=columns.REVIEW_NOTE),
    AfterValidator(_no_control_characters),
]
# Free text (a refund's reason).
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=columns.REASON),
    AfterValidator(_no_control_characters),
]
# Gateway nonces and the ids the service hands out: printable ASCII.
Token = Annotated[
    str, StringConstraints(min_length=1, max_length=512), AfterValidator(_printable_ascii)
]
AsciiId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
    AfterValidator(_printable_ascii),
]
IdempotencyKey = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=columns.IDEMPOTENCY_KEY),
    AfterValidator(_printable_ascii),
]
MerchantId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=MERCHANT_ID_PATTERN),
    AfterValidator(_no_card_number),
]
AmountString = Annotated[
    str,
    BeforeValidator(_decimal_string),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
    AfterValidator(_no_control_characters),
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
    payment_token: Token | None = None
    payment_method_id: AsciiId | None = None
    # Merchant-initiated payments (subscriptions): retry soft declines on a schedule. Needs
    # payment_method_id: a nonce is single use (checked by the service, after an idempotent
    # replay has had its chance).
    retry: bool = False


class PaymentInitiationMessage(InitiatePaymentIn):
    """A message on ``payment_initiation``: the fields of POST /initiate-payment plus the
    idempotency key that makes a redelivered message start nothing new (required: a key
    derived from the message's place in the log would collide when the broker's offsets
    restart) and the merchant it is for (missing: the default merchant)."""

    model_config = ConfigDict(extra="ignore")

    idempotency_key: IdempotencyKey
    merchant_id: MerchantId | None = Field(default=None)
