"""SQLModel tables and their public shapes.

Amounts are integer minor units of ``currency``; timestamps are UTC. Status columns are plain
strings (their values in ``payments.vocabulary``) checked by the repository's state machine
(and a CHECK constraint), so a new status never needs a database enum migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from payments.contracts import FraudReason, FraudVerdict
from payments.db import columns
from payments.gateway.types import InstrumentDetails
from payments.money import Money
from payments.vocabulary import PaymentStatus, RefundStatus, VaultStatus


class Role(StrEnum):
    """What an API key may do. ``checkout``: one merchant's payments, refunds and saved
    methods. ``admin``: the platform operator, across merchants, plus keys, exchange rates,
    reconciliation and the codec endpoint."""

    CHECKOUT = "checkout"
    ADMIN = "admin"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _timestamp() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Payment(SQLModel, table=True):
    __tablename__ = "payments"
    __table_args__ = (
        sa.Index("ix_payments_created_at_id", "created_at", "payment_id"),
        sa.CheckConstraint("amount > 0", name="ck_payments_amount_positive"),
        sa.CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= amount",
            name="ck_payments_refunded_within_amount",
        ),
        sa.CheckConstraint(
            "payment_status IN ('pending', 'success', 'failure')", name="ck_payments_status"
        ),
        sa.Index("ix_payments_merchant_created_at_id", "merchant_id", "created_at", "payment_id"),
        # The fraud rules' velocity counts: a user's, a payment method's recent payments.
        sa.Index("ix_payments_merchant_user_created_at", "merchant_id", "user_id", "created_at"),
        sa.Index("ix_payments_fingerprint_created_at", "payment_method_fingerprint", "created_at"),
        # The duplicate-order check (an earlier open payment of the merchant's order): without
        # it SQLite walks the merchant's whole history by created_at.
        sa.Index("ix_payments_merchant_order_created_at", "merchant_id", "order_id", "created_at"),
    )

    payment_id: str = Field(primary_key=True, max_length=36)
    merchant_id: str = Field(foreign_key="merchants.merchant_id", max_length=64)
    order_id: str = Field(index=True, max_length=columns.CHECKOUT_ID)
    # The order id the gateway knows the sale by: "{merchant_id}:{order_id}", so that two
    # merchants' orders with the same id never meet at the gateway (the retried charge looks
    # sales up by it). None: charged before merchants existed, with the bare order id.
    gateway_order_id: str | None = Field(default=None, max_length=255)
    user_id: str = Field(index=True, max_length=columns.CHECKOUT_ID)
    amount: int = Field(sa_type=sa.BigInteger)
    currency: str = Field(max_length=3)
    payment_status: str = Field(default=PaymentStatus.PENDING, index=True, max_length=16)
    payment_method: str = Field(max_length=32)
    transaction_id: str | None = Field(default=None, index=True, max_length=64)
    processor_response_code: str | None = Field(
        default=None, max_length=columns.PROCESSOR_RESPONSE_CODE
    )
    failure_reason: str | None = Field(default=None, max_length=columns.FAILURE_REASON)
    failure_message: str | None = Field(default=None, max_length=columns.FAILURE_MESSAGE)
    refunded_amount: int = Field(default=0, sa_type=sa.BigInteger)
    # Vaulted method charged instead of a nonce (POST /payment-methods).
    payment_method_id: str | None = Field(
        default=None, foreign_key="payment_methods.payment_method_id", max_length=36
    )
    # The gateway's last known status of the sale (settlement_pending while a bank transfer
    # clears) and what the user would recognise of the means of payment.
    gateway_status: str | None = Field(default=None, max_length=columns.GATEWAY_STATUS)
    decline_type: str | None = Field(default=None, max_length=8)  # soft | hard
    instrument_type: str | None = Field(default=None, max_length=columns.INSTRUMENT_TYPE)
    card_brand: str | None = Field(default=None, max_length=columns.BRAND)
    card_last4: str | None = Field(default=None, max_length=columns.LAST4)
    wallet_type: str | None = Field(default=None, max_length=columns.WALLET)
    instrument_display: str | None = Field(default=None, max_length=columns.INSTRUMENT_DISPLAY)
    # Currency conversion: amount/currency above are what the customer was shown; when the
    # merchant has no account in that currency the gateway charges charged_amount in
    # charged_currency, at exchange_rate (a decimal string) published at rate_as_of.
    # None: charged as presented.
    charged_amount: int | None = Field(default=None, sa_type=sa.BigInteger)
    charged_currency: str | None = Field(default=None, max_length=3)
    exchange_rate: str | None = Field(default=None, max_length=columns.EXCHANGE_RATE)
    rate_as_of: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    # Retries of soft declines (merchant-initiated payments that asked for them).
    retry_enabled: bool = Field(default=False)
    attempts: int = Field(default=0)
    next_retry_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    # Idempotency: the client's key and a hash of the request it came with (the lookup is
    # IdempotencyRecord, scoped to the merchant and expiring; a key may come back later).
    idempotency_key: str | None = Field(default=None, max_length=columns.IDEMPOTENCY_KEY)
    request_fingerprint: str | None = Field(default=None, max_length=64)
    # The fraud step's verdict (payments.contracts.FraudVerdict): decision, score 0-100, the
    # rules that fired ([{"rule", "message"}]) and the learned score with its model's
    # version. None until the step has run (and for payments from before verdicts).
    fraud_decision: str | None = Field(default=None, index=True, max_length=8)
    fraud_score: int | None = Field(default=None)
    fraud_reasons: list[dict[str, str]] | None = Field(
        default=None, sa_type=sa.JSON(none_as_null=True)
    )
    fraud_model_score: int | None = Field(default=None)
    fraud_model_version: str | None = Field(default=None, max_length=32)
    # What the payment method was recognised by before charging: a fingerprint (never the
    # number) and the card's BIN, for the velocity and blocklist rules.
    payment_method_fingerprint: str | None = Field(default=None, max_length=32)
    card_bin: str | None = Field(default=None, max_length=8)
    # A payment held for review: authorized, voided at this instant unless an operator decides.
    review_deadline_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()

    @property
    def fraud_verdict(self) -> FraudVerdict | None:
        """The verdict stored on the payment; None before the fraud step (or from before
        verdicts)."""
        if self.fraud_decision is None or self.fraud_score is None:
            return None
        return FraudVerdict(
            decision=self.fraud_decision,
            score=self.fraud_score,
            reasons=[
                FraudReason(rule=reason["rule"], message=reason["message"])
                for reason in self.fraud_reasons or []
            ],
            model_score=self.fraud_model_score,
            model_version=self.fraud_model_version,
        )

    @property
    def gateway_order(self) -> str:
        return self.gateway_order_id or self.order_id

    @property
    def charge(self) -> tuple[int, str]:
        """What the gateway charges: (minor units, currency)."""
        if self.charged_amount is not None and self.charged_currency is not None:
            return self.charged_amount, self.charged_currency
        return self.amount, self.currency

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def refunded_money(self) -> Money:
        return Money(self.refunded_amount, self.currency)

    @property
    def charged_money(self) -> Money | None:
        """What the gateway charged when it was another currency; None: charged as presented."""
        if self.charged_amount is None or not self.charged_currency:
            return None
        return Money(self.charged_amount, self.charged_currency)

    @property
    def refund_state(self) -> str:
        """none | partial | full: how much of the payment has been given back."""
        if self.refunded_amount == 0:
            return "none"
        return "full" if self.refunded_amount >= self.amount else "partial"

    @property
    def instrument(self) -> InstrumentDetails | None:
        """What the user would recognise of the means of payment; None before the gateway
        said."""
        if not self.instrument_type:
            return None
        return InstrumentDetails(
            instrument_type=self.instrument_type,
            brand=self.card_brand,
            last4=self.card_last4,
            wallet=self.wallet_type,
            display=self.instrument_display,
        )


class ExchangeRate(SQLModel, table=True):
    """Rates for presenting a payment in one currency and charging it in another. Append-only:
    the newest row for a pair is the current rate; payments keep the rate they used."""

    __tablename__ = "exchange_rates"
    __table_args__ = (sa.Index("ix_exchange_rates_pair_time", "base", "quote", "as_of"),)

    rate_id: int | None = Field(default=None, primary_key=True)
    base: str = Field(max_length=3)  # the currency the customer sees
    quote: str = Field(max_length=3)  # the currency charged
    rate: str = Field(max_length=columns.EXCHANGE_RATE)  # decimal string: 1 base = rate quote
    as_of: datetime = _timestamp()
    source: str = Field(default="manual", max_length=64)
    # The API key that set it (None: set before keys existed).
    set_by: str | None = Field(default=None, max_length=32)


class AuditEvent(SQLModel, table=True):
    """Append-only history of every status change of payments and refunds, and of every
    change that was refused."""

    __tablename__ = "audit_events"

    audit_id: int | None = Field(default=None, primary_key=True)
    payment_id: str = Field(index=True, max_length=36)
    refund_id: str | None = Field(default=None, max_length=36)
    subject: str = Field(max_length=16)  # "payment" | "refund"
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    accepted: bool = Field(default=True)
    # What caused it: "api", "consumer", "workflow", "reconciliation", ...
    cause: str = Field(max_length=64)
    gateway_status: str | None = Field(default=None, max_length=columns.GATEWAY_STATUS)
    processor_response_code: str | None = Field(
        default=None, max_length=columns.PROCESSOR_RESPONSE_CODE
    )
    detail: str | None = Field(default=None, max_length=columns.AUDIT_DETAIL)
    occurred_at: datetime = _timestamp()


class StoredPaymentMethod(SQLModel, table=True):
    """A payment method vaulted at the gateway for a user. The gateway token is stored only
    encrypted (payments.crypto); card numbers and CVVs never reach the service."""

    __tablename__ = "payment_methods"
    __table_args__ = (sa.Index("ix_payment_methods_merchant_user", "merchant_id", "user_id"),)

    payment_method_id: str = Field(primary_key=True, max_length=36)
    merchant_id: str = Field(foreign_key="merchants.merchant_id", max_length=64)
    user_id: str = Field(index=True, max_length=columns.CHECKOUT_ID)
    # pending until the gateway answers (the API may answer 202 before), then active or
    # failed; only active methods can be charged or listed.
    status: str = Field(default=VaultStatus.ACTIVE, max_length=16)
    gateway_customer_id: str | None = Field(default=None, max_length=64)
    token_ciphertext: str | None = Field(default=None, sa_type=sa.Text)
    failure_code: str | None = Field(default=None, max_length=columns.VAULT_FAILURE_CODE)
    failure_message: str | None = Field(default=None, max_length=columns.FAILURE_MESSAGE)
    instrument_type: str | None = Field(default=None, max_length=columns.INSTRUMENT_TYPE)
    brand: str | None = Field(default=None, max_length=columns.BRAND)
    last4: str | None = Field(default=None, max_length=columns.LAST4)
    expiration: str | None = Field(default=None, max_length=columns.EXPIRATION)
    wallet_type: str | None = Field(default=None, max_length=columns.WALLET)
    display: str | None = Field(default=None, max_length=columns.INSTRUMENT_DISPLAY)
    created_at: datetime = _timestamp()
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class ReconciliationReport(SQLModel, table=True):
    """What one reconciliation run found and repaired (the latest is served by the API)."""

    __tablename__ = "reconciliation_reports"

    report_id: str = Field(primary_key=True, max_length=64)
    started_at: datetime = Field(sa_type=UTCDateTime, index=True)
    finished_at: datetime = Field(sa_type=UTCDateTime)
    checked_payments: int
    checked_refunds: int
    repaired: int
    # JSON list of {kind, id, found, action}.
    findings: str = Field(sa_type=sa.Text)


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"
    __table_args__ = (
        sa.Index("ix_refunds_created_at_id", "created_at", "refund_id"),
        sa.CheckConstraint("amount > 0", name="ck_refunds_amount_positive"),
        sa.CheckConstraint(
            "refund_status IN ('initiated', 'processed', 'failed')", name="ck_refunds_status"
        ),
        sa.Index("ix_refunds_merchant_created_at_id", "merchant_id", "created_at", "refund_id"),
    )

    refund_id: str = Field(primary_key=True, max_length=36)
    merchant_id: str = Field(foreign_key="merchants.merchant_id", max_length=64)
    payment_id: str = Field(foreign_key="payments.payment_id", index=True, max_length=36)
    amount: int = Field(sa_type=sa.BigInteger)
    currency: str = Field(max_length=3)
    refund_status: str = Field(default=RefundStatus.INITIATED, index=True, max_length=16)
    reason: str = Field(max_length=columns.REASON)
    # In the charged currency, for a converted payment (at the payment's rate); else None.
    charged_amount: int | None = Field(default=None, sa_type=sa.BigInteger)
    # "refund" (a credit transaction) or "void" (the sale was cancelled before settlement).
    method: str | None = Field(default=None, max_length=16)
    gateway_transaction_id: str | None = Field(default=None, max_length=64)
    failure_reason: str | None = Field(default=None, max_length=columns.FAILURE_REASON)
    failure_message: str | None = Field(default=None, max_length=columns.FAILURE_MESSAGE)
    idempotency_key: str | None = Field(default=None, max_length=columns.IDEMPOTENCY_KEY)
    request_fingerprint: str | None = Field(default=None, max_length=64)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)


class Merchant(SQLModel, table=True):
    """A business whose checkout uses the service. Created by the first API key that names
    it; every payment, refund, saved payment method and idempotency key belongs to one."""

    __tablename__ = "merchants"

    merchant_id: str = Field(primary_key=True, max_length=64)
    created_at: datetime = _timestamp()


class ApiKey(SQLModel, table=True):
    """An API key. Only a hash of the secret is stored: the secret is shown once, at
    creation. A revoked key is refused from the moment revoked_at is set."""

    __tablename__ = "api_keys"

    key_id: str = Field(primary_key=True, max_length=32)
    # The merchant a checkout key acts for; an admin key may name none (the platform).
    merchant_id: str | None = Field(
        default=None, foreign_key="merchants.merchant_id", index=True, max_length=64
    )
    role: str = Field(max_length=16)
    # SHA-256 of the whole secret (hex). The secret is 256 random bits: a slow password hash
    # would add nothing but latency to every request.
    secret_hash: str = Field(max_length=64)
    created_at: datetime = _timestamp()
    created_by: str | None = Field(default=None, max_length=32)  # key id, None: console
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class IdempotencyRecord(SQLModel, table=True):
    """An Idempotency-Key of a merchant and what it created, until it expires."""

    __tablename__ = "idempotency_keys"

    merchant_id: str = Field(primary_key=True, foreign_key="merchants.merchant_id", max_length=64)
    scope: str = Field(primary_key=True, max_length=16)  # "payment" | "refund"
    key: str = Field(primary_key=True, max_length=columns.IDEMPOTENCY_KEY)
    resource_id: str = Field(max_length=36)
    request_fingerprint: str = Field(max_length=64)
    created_at: datetime = _timestamp()
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class BlocklistEntry(SQLModel, table=True):
    """A user, payment-method fingerprint or card BIN the fraud rules decline. Platform-wide:
    managed with admin keys (POST/GET/DELETE /admin/blocklist)."""

    __tablename__ = "fraud_blocklist"
    __table_args__ = (
        sa.UniqueConstraint("kind", "value", name="uq_fraud_blocklist_kind_value"),
        sa.CheckConstraint("kind IN ('user', 'fingerprint', 'bin')", name="ck_blocklist_kind"),
    )

    entry_id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=16)  # payments.vocabulary.BlocklistKind
    value: str = Field(max_length=columns.BLOCKLIST_VALUE)
    reason: str = Field(max_length=columns.REASON)
    created_at: datetime = _timestamp()
    created_by: str | None = Field(default=None, max_length=32)  # admin key id


class WebhookReceipt(SQLModel, table=True):
    """A webhook notification already handled (by digest): a replay of it is a no-op.
    Kept for as long as a notification is accepted at all (older ones are refused)."""

    __tablename__ = "webhook_receipts"

    digest: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=columns.WEBHOOK_KIND)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
