"""Request and response bodies of the HTTP API. Amounts are decimal strings ("49.99")."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from payments.db import columns
from payments.db.models import (
    Role,
)
from payments.money import Money
from payments.requests import (
    AmountString,
    AsciiId,
    Identifier,
    InitiatePaymentIn,
    MerchantId,
    Note,
    Text,
    Token,
)
from payments.vocabulary import BlocklistKind

__all__ = ["InitiatePaymentIn"]

Model = TypeVar("Model", bound="PublicModel")


class PublicModel(BaseModel):
    """An answer read off a stored object (a table row, a gateway result) by attribute name, as
    the FastAPI template's ``…Public`` models are: fields named like the row's come across by
    themselves; ``validation_alias`` names the attribute of a field the API calls otherwise."""

    model_config = ConfigDict(from_attributes=True, validate_by_name=True)

    @classmethod
    def of(cls: type[Model], source: object) -> Model:
        return cls.model_validate(source)


def _decimal(value: object) -> object:
    # The API shows amounts as decimal strings in their currency's minor units ("49.99").
    return str(value) if isinstance(value, Money) else value


# An amount read from a ``Money`` attribute of the row (``money``, ``refunded_money``...).
DecimalAmount = Annotated[str, BeforeValidator(_decimal)]


class VerifyPaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payment_id: AsciiId


class RefundIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"payment_id": "…", "amount": "10.00", "reason": "damaged item"}]
        },
    )

    payment_id: AsciiId
    # Omitted: refund everything not yet refunded.
    amount: AmountString | None = None
    reason: Text


class PaymentMethodDetails(PublicModel):
    """What a user recognises of the means of payment (never a full number)."""

    instrument_type: str
    brand: str | None
    last4: str | None
    wallet: str | None
    display: str | None


class FraudReasonOut(PublicModel):
    rule: str  # stable id: "velocity_user_10m", "blocklist_user", "model_score", ...
    message: str  # why, for people


class FraudOut(PublicModel):
    """The fraud step's verdict: approve, review (authorized, held for an operator) or
    decline (never sent to the gateway)."""

    decision: str
    score: int  # 0-100
    reasons: list[FraudReasonOut]
    model_score: int | None  # the learned score alone
    model_version: str | None


class PaymentPublic(PublicModel):
    payment_id: str
    merchant_id: str
    order_id: str
    # What the gateway knows the sale by ("{merchant_id}:{order_id}"; the bare order id for
    # payments from before merchants).
    gateway_order_id: str = Field(validation_alias="gateway_order")
    user_id: str
    amount: DecimalAmount = Field(validation_alias="money")
    currency: str
    payment_status: str
    payment_method: str
    transaction_id: str | None
    processor_response_code: str | None
    failure_reason: str | None
    failure_message: str | None
    refunded_amount: DecimalAmount = Field(validation_alias="refunded_money")
    # none | partial | full: how much of the payment has been given back.
    refund_state: str
    # soft | hard, for processor declines: whether trying the same card later may work.
    decline_type: str | None
    # The gateway's last known status of the sale (e.g. settlement_pending).
    gateway_status: str | None
    payment_method_id: str | None
    payment_method_details: PaymentMethodDetails | None = Field(validation_alias="instrument")
    # Set when the payment was charged in another currency than the one it was presented in.
    charged_amount: DecimalAmount | None = Field(validation_alias="charged_money")
    charged_currency: str | None
    exchange_rate: str | None
    rate_as_of: datetime | None
    # Soft-decline retries (payments initiated with "retry": true).
    retry: bool = Field(validation_alias="retry_enabled")
    attempts: int
    next_retry_at: datetime | None
    # None before the fraud step has run (and for payments from before verdicts).
    fraud: FraudOut | None = Field(validation_alias="fraud_verdict")
    # Held for review: voided at this instant unless an operator decides before.
    review_deadline_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AuditEventOut(PublicModel):
    subject: str  # payment | refund
    refund_id: str | None
    from_status: str | None
    to_status: str
    accepted: bool  # False: the change was refused by the state machine
    cause: str
    gateway_status: str | None
    processor_response_code: str | None
    detail: str | None
    occurred_at: datetime


class AuditTrail(BaseModel):
    items: list[AuditEventOut]


class ExchangeRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # 1 unit of the base currency in the quote currency, as a decimal string.
    rate: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True,
            max_length=columns.EXCHANGE_RATE,
            pattern=r"^[0-9]{1,12}(\.[0-9]{1,18})?$",
        ),
    ]
    # Needed to move the rate by more than PAYMENTS_RATE_CHANGE_LIMIT_PERCENT at once.
    override: bool = False


class ExchangeRateOut(PublicModel):
    base: str
    quote: str
    rate: str
    as_of: datetime
    set_by: str | None  # the API key that set it


class GatewayView(BaseModel):
    transaction_id: str
    status: str
    amount: str
    currency: str
    processor_response_code: str | None
    checked_at: datetime


class VerifiedPayment(PaymentPublic):
    # What the gateway says about the payment's transaction right now (None before a sale).
    gateway: GatewayView | None
    # False when the stored status and the gateway's disagree (e.g. the workflow has not
    # recorded the gateway's answer yet).
    consistent: bool


class SavePaymentMethodIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"user_id": "user-42", "payment_token": "fake-valid-visa-nonce"}]
        },
    )

    user_id: Identifier
    # A nonce from the client SDK (or the sandbox's /_sandbox/client/tokenize): never a card.
    payment_token: Token


class SavedPaymentMethod(PublicModel):
    payment_method_id: str
    merchant_id: str
    user_id: str
    # pending (the gateway has not answered yet), active (can be charged), failed (refused:
    # failure_code, failure_message).
    status: str
    type: str | None = Field(validation_alias="instrument_type")
    brand: str | None
    last4: str | None
    expiration: str | None
    wallet: str | None = Field(validation_alias="wallet_type")
    display: str | None
    failure_code: str | None
    failure_message: str | None
    created_at: datetime


class SavedPaymentMethods(BaseModel):
    items: list[SavedPaymentMethod]


class ReconciliationReportOut(BaseModel):
    report_id: str
    started_at: datetime
    finished_at: datetime
    checked_payments: int
    checked_refunds: int
    repaired: int
    findings: list[dict[str, str]]


class RefundPublic(PublicModel):
    refund_id: str
    merchant_id: str
    payment_id: str
    amount: DecimalAmount = Field(validation_alias="money")
    currency: str
    refund_status: str
    reason: str
    method: str | None
    failure_reason: str | None
    failure_message: str | None
    created_at: datetime
    updated_at: datetime


T = TypeVar("T")


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class ErrorDetail(BaseModel):
    field: str | None
    message: str


class ErrorBody(BaseModel):
    type: str
    message: str
    field: str | None = None
    errors: list[ErrorDetail] = Field(default_factory=list)


class ErrorOut(BaseModel):
    error: ErrorBody


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"merchant_id": "acme", "role": "checkout"}]},
    )

    # Letters, digits, ".", "_", "-" (at most 64). The first key naming a merchant creates it.
    merchant_id: MerchantId | None = None
    role: Role


class ApiKeyOut(PublicModel):
    key_id: str
    merchant_id: str | None
    role: str
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    # Shown once: only its hash is stored.
    secret: str


class ApiKeys(BaseModel):
    items: list[ApiKeyOut]


class BlocklistIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"kind": "user", "value": "user-123", "reason": "chargeback fraud"}]
        },
    )

    kind: BlocklistKind
    # A user id; a payment method's fingerprint (32 hex digits, as GET /admin/reviews shows
    # it); a card BIN of 6 or 8 digits.
    value: Identifier
    reason: Text

    @model_validator(mode="after")
    def _value_fits_kind(self) -> BlocklistIn:
        if self.kind == BlocklistKind.BIN and not _BIN.fullmatch(self.value):
            raise ValueError("a BIN is the card's first 6 or 8 digits")
        if self.kind == BlocklistKind.FINGERPRINT:
            if not _FINGERPRINT.fullmatch(self.value.lower()):
                raise ValueError("a fingerprint is 32 hexadecimal digits")
            self.value = self.value.lower()
        return self


_BIN = re.compile(r"[0-9]{6}(?:[0-9]{2})?")
_FINGERPRINT = re.compile(r"[0-9a-f]{32}")


class BlocklistEntryOut(PublicModel):
    entry_id: str
    kind: str
    value: str
    reason: str
    created_at: datetime
    created_by: str | None


class Blocklist(BaseModel):
    items: list[BlocklistEntryOut]


class ReviewIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"decision": "approve", "note": "customer called"}]},
    )

    decision: Literal["approve", "decline"]
    note: Note = ""


class HeldPaymentOut(PaymentPublic):
    """A payment held for review, with what was recognised of its payment method."""

    payment_method_fingerprint: str | None
    card_bin: str | None


class Reviews(BaseModel):
    items: list[HeldPaymentOut]
