"""The service's words, each defined once: statuses, refund methods, decline types, and the
sets of gateway transaction statuses the service acts on.

A plain module (no SQLModel, no SDK), so that workflows, activities, the database, the API
and events all use the same names. The values are what the database stores, the API answers
and Temporal histories hold: never change one, add new ones.
"""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"


class RefundStatus(StrEnum):
    INITIATED = "initiated"
    PROCESSED = "processed"
    FAILED = "failed"


class PaymentMethod(StrEnum):
    CREDIT_CARD = "credit_card"
    DEBIT_CARD = "debit_card"
    BANK_TRANSFER = "bank_transfer"
    WALLET = "wallet"


class VaultStatus(StrEnum):
    PENDING = "pending"  # the gateway has not answered yet
    ACTIVE = "active"
    FAILED = "failed"  # the gateway refused the nonce


class RefundMethod(StrEnum):
    """How money went back: a credit transaction, or the sale cancelled before settlement."""

    REFUND = "refund"
    VOID = "void"


class FraudOutcome(StrEnum):
    """The fraud step's decision: charge, charge only once an operator approves, or refuse."""

    APPROVE = "approve"
    REVIEW = "review"
    DECLINE = "decline"


class BlocklistKind(StrEnum):
    USER = "user"
    FINGERPRINT = "fingerprint"  # a payment method's fingerprint (payments.fraud)
    BIN = "bin"  # a card's first six (or eight) digits


class DeclineType(StrEnum):
    """A soft decline is temporary (the same method may succeed later, so a merchant-initiated
    payment may retry it); a hard one never heals (see payments.gateway.declines)."""

    SOFT = "soft"
    HARD = "hard"


class GatewayRefundOutcome(StrEnum):
    """What the gateway did with a refund request."""

    REFUNDED = "refunded"
    VOIDED = "voided"
    NOT_SETTLED = "not_settled"  # a partial refund before settlement: wait, then try again
    REFUSED = "refused"


# Braintree transaction statuses the service acts on.
SETTLED_STATUSES = frozenset({"settled", "settling"})
UNSETTLED_STATUSES = frozenset({"authorized", "submitted_for_settlement", "settlement_pending"})
APPROVED_STATUSES = SETTLED_STATUSES | UNSETTLED_STATUSES
# A sale that will never settle: declined at settlement, voided, refused.
SETTLEMENT_FAILED_STATUSES = frozenset(
    {"settlement_declined", "failed", "voided", "processor_declined", "gateway_rejected"}
)
# A sale that can still be cancelled (a void returns the whole payment before settlement).
VOIDABLE_STATUSES = frozenset({"authorized", "submitted_for_settlement"})
# A sale the payment counts as paid: settled, or submitted and bound to settle. Only
# settlement_pending (bank transfers) leaves the payment waiting.
PAID_STATUSES = SETTLED_STATUSES | VOIDABLE_STATUSES
