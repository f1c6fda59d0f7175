"""Braintree's documented sandbox test values: which nonce or amount produces which outcome.

Source: Braintree's "Testing and Go Live" reference and ``braintree.test.nonces.Nonces``. The
amount rules apply whatever the currency (as in Braintree's sandbox), so a 2500 JPY test
payment is declined too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

OutcomeKind = Literal["approved", "processor_declined", "gateway_rejected", "failed"]


@dataclass(frozen=True, slots=True)
class Card:
    """The non-sensitive card details a transaction response carries (never a full number)."""

    card_type: str
    bin: str
    last_4: str
    expiration_month: str = "12"
    expiration_year: str = "2030"
    debit: str = "Unknown"
    prepaid: str = "Unknown"


@dataclass(frozen=True, slots=True)
class ValidationFailure:
    """One entry of ``<errors>``; ``path`` is where it nests (transaction, credit_card...)."""

    code: str
    attribute: str
    message: str
    path: tuple[str, ...] = ("transaction",)


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    processor_response_code: str | None = None
    gateway_rejection_reason: str | None = None


@dataclass(frozen=True, slots=True)
class NonceBehaviour:
    """What a nonce does: a card (possibly with a forced outcome) or a validation failure."""

    card: Card | None
    forced_outcome: Outcome | None = None
    failure: ValidationFailure | None = None


DEFAULT_CARD = Card("Visa", "401288", "1881")
CARDS_BY_BRAND: dict[str, Card] = {
    "visa": DEFAULT_CARD,
    "mastercard": Card("MasterCard", "555555", "4444"),
    "amex": Card("American Express", "378282", "0005"),
    "discover": Card("Discover", "601111", "1117"),
    "jcb": Card("JCB", "356600", "0505"),
    "dinersclub": Card("Diners Club", "305693", "5904"),
    "maestro": Card("Maestro", "675964", "0005"),
    "debit": Card("Visa", "400011", "1881", debit="Yes"),
    "prepaid": Card("Visa", "400011", "1881", prepaid="Yes"),
}

APPROVED = Outcome("approved", processor_response_code="1000")

NONCE_UNKNOWN = ValidationFailure(
    "91565", "payment_method_nonce", "Unknown or expired payment_method_nonce."
)
NONCE_CONSUMED = ValidationFailure(
    "91564", "payment_method_nonce", "Cannot use a payment_method_nonce more than once."
)
CARD_NUMBER_INVALID = ValidationFailure(
    "81715", "number", "Credit card number is invalid.", path=("transaction", "credit_card")
)

_VALID = re.compile(r"fake-valid-(?:(?P<variant>[a-z0-9-]+)-)?nonce")
_PROCESSOR_DECLINED = re.compile(r"fake-processor-declined-(?P<brand>[a-z]+)-nonce")
_GATEWAY_REJECTED = {
    "fake-gateway-rejected-fraud-nonce": "fraud",
    "fake-gateway-rejected-risk-thresholds-nonce": "risk_threshold",
}


def classify_nonce(nonce: str) -> NonceBehaviour:
    """Card nonces only: wallet and bank nonces (Apple Pay, PayPal, SEPA...) are unknown here."""
    if match := _VALID.fullmatch(nonce):
        variant = match.group("variant") or "visa"
        return NonceBehaviour(CARDS_BY_BRAND.get(variant, DEFAULT_CARD))
    if match := _PROCESSOR_DECLINED.fullmatch(nonce):
        card = CARDS_BY_BRAND.get(match.group("brand"), DEFAULT_CARD)
        return NonceBehaviour(card, Outcome("processor_declined", processor_response_code="2000"))
    if reason := _GATEWAY_REJECTED.get(nonce):
        return NonceBehaviour(
            DEFAULT_CARD, Outcome("gateway_rejected", gateway_rejection_reason=reason)
        )
    if nonce == "fake-processor-failure-jcb-nonce":
        return NonceBehaviour(
            CARDS_BY_BRAND["jcb"], Outcome("failed", processor_response_code="3000")
        )
    if nonce == "fake-consumed-nonce":
        return NonceBehaviour(None, failure=NONCE_CONSUMED)
    if nonce == "fake-luhn-invalid-nonce":
        return NonceBehaviour(None, failure=CARD_NUMBER_INVALID)
    return NonceBehaviour(None, failure=NONCE_UNKNOWN)


def classify_amount(amount: Decimal) -> Outcome:
    """2000.00-2999.99 processor declined (code = integer part), 3000.00-3000.99 failed,
    5001.00 gateway rejected (application_incomplete); everything else approved."""
    if Decimal(2000) <= amount < Decimal(3000):
        return Outcome("processor_declined", processor_response_code=str(int(amount)))
    if Decimal(3000) <= amount < Decimal(3001):
        return Outcome("failed", processor_response_code="3000")
    if amount == Decimal("5001.00"):
        return Outcome("gateway_rejected", gateway_rejection_reason="application_incomplete")
    return APPROVED


# (text, type) by processor response code. Types follow Braintree: a soft decline may succeed
# on a later attempt, a hard decline will not.
_PROCESSOR_RESPONSES: dict[str, tuple[str, str]] = {
    "1000": ("Approved", "approved"),
    "1002": ("Processed", "approved"),
    "2000": ("Do Not Honor", "soft_declined"),
    "2001": ("Insufficient Funds", "soft_declined"),
    "2002": ("Limit Exceeded", "soft_declined"),
    "2003": ("Cardholder's Activity Limit Exceeded", "soft_declined"),
    "2004": ("Expired Card", "hard_declined"),
    "2005": ("Invalid Credit Card Number", "hard_declined"),
    "2006": ("Invalid Expiration Date", "hard_declined"),
    "2007": ("No Account", "hard_declined"),
    "2010": ("Card Issuer Declined CVV", "hard_declined"),
    "2012": ("Processor Declined - Possible Lost Card", "hard_declined"),
    "2013": ("Processor Declined - Possible Stolen Card", "hard_declined"),
    "2014": ("Processor Declined - Fraud Suspected", "hard_declined"),
    "2015": ("Transaction Not Allowed", "hard_declined"),
    "2038": ("Processor Declined", "soft_declined"),
    "2046": ("Declined", "soft_declined"),
    "2047": ("Call Issuer. Pick Up Card", "hard_declined"),
    "3000": ("Processor Network Unavailable - Try Again", "soft_declined"),
}


def processor_response(code: str) -> tuple[str, str]:
    """(text, type) for a processor response code; unlisted 2xxx codes are soft declines."""
    return _PROCESSOR_RESPONSES.get(code, ("Processor Declined", "soft_declined"))
