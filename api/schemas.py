"""Request and response bodies of the HTTP API. Amounts are decimal strings ("49.99")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from payments.db.models import (
    ApiKey,
    AuditEvent,
    ExchangeRate,
    Payment,
    Refund,
    Role,
    StoredPaymentMethod,
)
from payments.money import Money
from payments.requests import (
    AmountString,
    AsciiId,
    Identifier,
    InitiatePaymentIn,
    MerchantId,
    Text,
    Token,
)

__all__ = ["InitiatePaymentIn"]


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


class PaymentMethodDetails(BaseModel):
    """What a user recognises of the means of payment (never a full number)."""

    instrument_type: str
    brand: str | None
    last4: str | None
    wallet: str | None
    display: str | None


class PaymentPublic(BaseModel):
    payment_id: str
    merchant_id: str
    order_id: str
    # What the gateway knows the sale by ("{merchant_id}:{order_id}"; the bare order id for
    # payments from before merchants).
    gateway_order_id: str
    user_id: str
    amount: str
    currency: str
    payment_status: str
    payment_method: str
    transaction_id: str | None
    processor_response_code: str | None
    failure_reason: str | None
    failure_message: str | None
    refunded_amount: str
    # none | partial | full: how much of the payment has been given back.
    refund_state: str
    # soft | hard, for processor declines: whether trying the same card later may work.
    decline_type: str | None
    # The gateway's last known status of the sale (e.g. settlement_pending).
    gateway_status: str | None
    payment_method_id: str | None
    payment_method_details: PaymentMethodDetails | None
    # Set when the payment was charged in another currency than the one it was presented in.
    charged_amount: str | None
    charged_currency: str | None
    exchange_rate: str | None
    rate_as_of: datetime | None
    # Soft-decline retries (payments initiated with "retry": true).
    retry: bool
    attempts: int
    next_retry_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, payment: Payment) -> PaymentPublic:
        refunded = payment.refunded_amount
        return cls(
            payment_id=payment.payment_id,
            merchant_id=payment.merchant_id,
            order_id=payment.order_id,
            gateway_order_id=payment.gateway_order,
            user_id=payment.user_id,
            amount=str(Money(payment.amount, payment.currency)),
            currency=payment.currency,
            payment_status=payment.payment_status,
            payment_method=payment.payment_method,
            transaction_id=payment.transaction_id,
            processor_response_code=payment.processor_response_code,
            failure_reason=payment.failure_reason,
            failure_message=payment.failure_message,
            refunded_amount=str(Money(refunded, payment.currency)),
            refund_state="none"
            if refunded == 0
            else "full"
            if refunded >= payment.amount
            else "partial",
            decline_type=payment.decline_type,
            gateway_status=payment.gateway_status,
            payment_method_id=payment.payment_method_id,
            payment_method_details=(
                PaymentMethodDetails(
                    instrument_type=payment.instrument_type,
                    brand=payment.card_brand,
                    last4=payment.card_last4,
                    wallet=payment.wallet_type,
                    display=payment.instrument_display,
                )
                if payment.instrument_type
                else None
            ),
            charged_amount=(
                str(Money(payment.charged_amount, payment.charged_currency))
                if payment.charged_amount is not None and payment.charged_currency
                else None
            ),
            charged_currency=payment.charged_currency,
            exchange_rate=payment.exchange_rate,
            rate_as_of=payment.rate_as_of,
            retry=payment.retry_enabled,
            attempts=payment.attempts,
            next_retry_at=payment.next_retry_at,
            created_at=payment.created_at,
            updated_at=payment.updated_at,
        )


class AuditEventOut(BaseModel):
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

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        return cls(
            subject=event.subject,
            refund_id=event.refund_id,
            from_status=event.from_status,
            to_status=event.to_status,
            accepted=event.accepted,
            cause=event.cause,
            gateway_status=event.gateway_status,
            processor_response_code=event.processor_response_code,
            detail=event.detail,
            occurred_at=event.occurred_at,
        )


class AuditTrail(BaseModel):
    items: list[AuditEventOut]


class ExchangeRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # 1 unit of the base currency in the quote currency, as a decimal string.
    rate: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, max_length=32, pattern=r"^[0-9]{1,12}(\.[0-9]{1,18})?$"
        ),
    ]
    # Needed to move the rate by more than PAYMENTS_RATE_CHANGE_LIMIT_PERCENT at once.
    override: bool = False


class ExchangeRateOut(BaseModel):
    base: str
    quote: str
    rate: str
    as_of: datetime
    set_by: str | None  # the API key that set it

    @classmethod
    def of(cls, rate: ExchangeRate) -> ExchangeRateOut:
        return cls(
            base=rate.base, quote=rate.quote, rate=rate.rate, as_of=rate.as_of, set_by=rate.set_by
        )


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


class SavedPaymentMethod(BaseModel):
    payment_method_id: str
    merchant_id: str
    user_id: str
    # pending (the gateway has not answered yet), active (can be charged), failed (refused:
    # failure_code, failure_message).
    status: str
    type: str | None
    brand: str | None
    last4: str | None
    expiration: str | None
    wallet: str | None
    display: str | None
    failure_code: str | None
    failure_message: str | None
    created_at: datetime

    @classmethod
    def of(cls, method: StoredPaymentMethod) -> SavedPaymentMethod:
        return cls(
            payment_method_id=method.payment_method_id,
            merchant_id=method.merchant_id,
            user_id=method.user_id,
            status=method.status,
            failure_code=method.failure_code,
            failure_message=method.failure_message,
            type=method.instrument_type,
            brand=method.brand,
            last4=method.last4,
            expiration=method.expiration,
            wallet=method.wallet_type,
            display=method.display,
            created_at=method.created_at,
        )


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


class RefundPublic(BaseModel):
    refund_id: str
    merchant_id: str
    payment_id: str
    amount: str
    currency: str
    refund_status: str
    reason: str
    method: str | None
    failure_reason: str | None
    failure_message: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, refund: Refund) -> RefundPublic:
        return cls(
            refund_id=refund.refund_id,
            merchant_id=refund.merchant_id,
            payment_id=refund.payment_id,
            amount=str(Money(refund.amount, refund.currency)),
            currency=refund.currency,
            refund_status=refund.refund_status,
            reason=refund.reason,
            method=refund.method,
            failure_reason=refund.failure_reason,
            failure_message=refund.failure_message,
            created_at=refund.created_at,
            updated_at=refund.updated_at,
        )


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


class ApiKeyOut(BaseModel):
    key_id: str
    merchant_id: str | None
    role: str
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(
            key_id=key.key_id,
            merchant_id=key.merchant_id,
            role=key.role,
            created_at=key.created_at,
            created_by=key.created_by,
            revoked_at=key.revoked_at,
        )


class ApiKeyCreated(ApiKeyOut):
    # Shown once: only its hash is stored.
    secret: str


class ApiKeys(BaseModel):
    items: list[ApiKeyOut]
