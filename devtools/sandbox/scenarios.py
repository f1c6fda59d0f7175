"""Braintree's documented sandbox test values: which nonce, card or amount produces which outcome.

Source: Braintree's "Testing and Go Live" reference and ``braintree.test.nonces.Nonces``. The
amount rules apply whatever the currency (as in Braintree's sandbox), so a 2500 JPY test
payment is declined too.

What ``payment_method_nonce.find`` tells of the fixed card nonces (brand, BIN, last 4,
``bin_data.country_of_issuance``); the same card vaulted tells the same:

- fake-valid-nonce, fake-valid-visa-nonce (and any fake-valid-*-nonce not below):
  Visa 401288, 1881, Unknown
- fake-valid-mastercard-nonce: MasterCard 555555, 4444, Unknown
- fake-valid-amex-nonce: American Express 378282, 0005, Unknown
- fake-valid-discover-nonce: Discover 601111, 1117, Unknown
- fake-valid-jcb-nonce: JCB 356600, 0505, Unknown
- fake-valid-dinersclub-nonce: Diners Club 305693, 5904, Unknown
- fake-valid-maestro-nonce: Maestro 675964, 0005, Unknown
- fake-valid-debit-nonce, fake-valid-prepaid-nonce: Visa 400011, 1881, Unknown
- fake-valid-country-of-issuance-cad-nonce: Visa 401288, 1881, CAN
- fake-valid-country-of-issuance-usa-nonce: Visa 401288, 1881, USA
- fake-processor-declined-<brand>-nonce, fake-apple-pay-<brand>-nonce: the brand's card above;
  fake-android-pay-<brand>-nonce: the brand's card as the virtual card, its source card
  ending 1111 (no brand: Discover)
- PayPal, Venmo, SEPA and US bank account nonces: no BIN, no country (no bin_data)

Braintree's sandbox says "Unknown" for the issuing country of its test cards, except on its
two country-of-issuance nonces; so does this one, tokenized cards included. The other
indicator nonces (``-commercial-``, ``-durbin-regulated-``, ``-healthcare-``, ``-payroll-``,
``-issuing-bank-network-only-``) set their one indicator on the Visa test card.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

OutcomeKind = Literal["approved", "processor_declined", "gateway_rejected", "failed"]
# Braintree's payment_instrument_type values the sandbox knows.
InstrumentType = Literal[
    "credit_card",
    "apple_pay_card",
    "android_pay_card",
    "paypal_account",
    "venmo_account",
    "sepa_debit_account",
    "us_bank_account",
]
# Bank transfers: a sale waits in settlement_pending until the bank answers.
BANK_TRANSFER_TYPES: frozenset[str] = frozenset({"sepa_debit_account", "us_bank_account"})
# Why a nonce cannot be used; each context (sale, vault) has its own error code for it.
NonceProblem = Literal["unknown", "consumed", "card_number_invalid", "one_time_paypal"]


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
    # bin_data indicators; Braintree's sandbox knows them only for its indicator nonces.
    country_of_issuance: str = "Unknown"  # ISO 3166 alpha-3 ("CAN") or "Unknown"
    commercial: str = "Unknown"
    durbin_regulated: str = "Unknown"
    healthcare: str = "Unknown"
    payroll: str = "Unknown"
    issuing_bank: str = "Unknown"

    @property
    def unique_number_identifier(self) -> str:
        """Braintree's id of a card number (32 hex digits, the same wherever the number goes).
        The sandbox keeps no number, so it derives the id from the bin and last 4 it keeps:
        two numbers that share both share the id, which no pair of test cards does."""
        return hashlib.sha256(f"sandbox-card|{self.bin}|{self.last_4}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class PayPalPayer:
    email: str
    payer_id: str
    first_name: str
    last_name: str
    # Present for a billing agreement (vaultable); None for a one-time payment.
    billing_agreement_id: str | None = None


@dataclass(frozen=True, slots=True)
class VenmoUser:
    username: str
    venmo_user_id: str


@dataclass(frozen=True, slots=True)
class BankAccount:
    """A US (ACH) or SEPA account; the fields of the other scheme stay None."""

    last_4: str
    routing_number: str | None = None
    account_type: str | None = None
    account_holder_name: str | None = None
    bank_name: str | None = None
    mandate_type: str | None = None
    bank_reference_token: str | None = None
    merchant_or_partner_customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class Instrument:
    """What pays: a card, a wallet (with the card it carries), or an account."""

    type: InstrumentType
    # Cards and card wallets. For Google Pay this is the virtual (network token) card and
    # ``source_card`` the customer's own card behind it.
    card: Card | None = None
    source_card: Card | None = None
    paypal: PayPalPayer | None = None
    venmo: VenmoUser | None = None
    bank_account: BankAccount | None = None

    @property
    def is_bank_transfer(self) -> bool:
        return self.type in BANK_TRANSFER_TYPES


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
    """What a nonce does: an instrument (possibly with a forced outcome: the card fails
    verification and every charge) or a problem that makes it unusable."""

    instrument: Instrument | None
    forced_outcome: Outcome | None = None
    problem: NonceProblem | None = None


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

# Braintree's card-indicator nonces (fake-valid-<indicator>-nonce): the Visa test card with one
# bin_data indicator set (braintree.test.nonces: TransactableCountryOfIssuanceCAD...).
INDICATOR_CARDS: dict[str, Card] = {
    "country-of-issuance-cad": replace(DEFAULT_CARD, country_of_issuance="CAN"),
    "country-of-issuance-usa": replace(DEFAULT_CARD, country_of_issuance="USA"),
    "commercial": replace(DEFAULT_CARD, commercial="Yes"),
    "durbin-regulated": replace(DEFAULT_CARD, durbin_regulated="Yes"),
    "healthcare": replace(DEFAULT_CARD, healthcare="Yes"),
    "payroll": replace(DEFAULT_CARD, payroll="Yes"),
    "issuing-bank-network-only": replace(DEFAULT_CARD, issuing_bank="NETWORK ONLY"),
}

APPROVED = Outcome("approved", processor_response_code="1000")
PROCESSOR_DECLINED = Outcome("processor_declined", processor_response_code="2000")

# --- validation failures by context --------------------------------------------------------
NONCE_UNKNOWN = ValidationFailure(
    "91565", "payment_method_nonce", "Unknown or expired payment_method_nonce."
)
NONCE_CONSUMED = ValidationFailure(
    "91564", "payment_method_nonce", "Cannot use a payment_method_nonce more than once."
)
CARD_NUMBER_INVALID = ValidationFailure(
    "81715", "number", "Credit card number is invalid.", path=("transaction", "credit_card")
)
SALE_NONCE_FAILURES: dict[NonceProblem, ValidationFailure] = {
    "unknown": NONCE_UNKNOWN,
    "consumed": NONCE_CONSUMED,
    "card_number_invalid": CARD_NUMBER_INVALID,
    # A one-time PayPal nonce pays once; only vaulting it is refused.
    "one_time_paypal": NONCE_UNKNOWN,
}
# payment_method.create reports nonce problems under payment_method (Braintree's 931xx).
VAULT_NONCE_FAILURES: dict[NonceProblem, ValidationFailure] = {
    "unknown": ValidationFailure(
        "93108",
        "payment_method_nonce",
        "Unknown or expired payment_method_nonce.",
        path=("payment_method",),
    ),
    "consumed": ValidationFailure(
        "93107",
        "payment_method_nonce",
        "Cannot use a payment_method_nonce more than once.",
        path=("payment_method",),
    ),
    "card_number_invalid": ValidationFailure(
        "81715", "number", "Credit card number is invalid.", path=("credit_card",)
    ),
    "one_time_paypal": ValidationFailure(
        "82902",
        "base",
        "Cannot vault one-time use PayPal Account.",
        path=("paypal_account",),
    ),
}

# --- wallets and bank accounts -----------------------------------------------------------------
_PAYER = PayPalPayer("payer@example.com", "PAYER0123456789", "John", "Doe")
PAYPAL_ONE_TIME = Instrument("paypal_account", paypal=_PAYER)
PAYPAL_BILLING_AGREEMENT = Instrument(
    "paypal_account",
    paypal=PayPalPayer(
        _PAYER.email,
        _PAYER.payer_id,
        _PAYER.first_name,
        _PAYER.last_name,
        billing_agreement_id="B-0123456789ABCDEFG",
    ),
)
VENMO = Instrument("venmo_account", venmo=VenmoUser("venmojoe", "1234567891234567891"))
SEPA_DIRECT_DEBIT = Instrument(
    "sepa_debit_account",
    bank_account=BankAccount(
        last_4="1234",
        mandate_type="RECURRENT",
        bank_reference_token="a-fake-bank-reference-token",  # noqa: S106  # a test value
        merchant_or_partner_customer_id="a-fake-mp-customer-id",
    ),
)
US_BANK_ACCOUNT = Instrument(
    "us_bank_account",
    bank_account=BankAccount(
        last_4="1234",
        routing_number="011000015",
        account_type="checking",
        account_holder_name="Dan Schulman",
        bank_name="FEDERAL RESERVE BANK",
    ),
)
_FIXED_NONCES: dict[str, Instrument] = {
    "fake-paypal-one-time-nonce": PAYPAL_ONE_TIME,
    "fake-paypal-billing-agreement-nonce": PAYPAL_BILLING_AGREEMENT,
    "fake-venmo-account-nonce": VENMO,
    "fake-sepa-direct-debit-nonce": SEPA_DIRECT_DEBIT,
    "fake-us-bank-account-nonce": US_BANK_ACCOUNT,
}


def apple_pay(card: Card) -> Instrument:
    return Instrument("apple_pay_card", card=card)


def google_pay(card: Card) -> Instrument:
    """The virtual card has the brand's test number; the source card ends 1111."""
    return Instrument("android_pay_card", card=card, source_card=replace(card, last_4="1111"))


# --- nonces --------------------------------------------------------------------------------
_VALID = re.compile(r"fake-valid-(?:(?P<variant>[a-z0-9-]+)-)?nonce")
_PROCESSOR_DECLINED = re.compile(r"fake-processor-declined-(?P<brand>[a-z]+)-nonce")
_APPLE_PAY = re.compile(r"fake-apple-pay-(?P<brand>visa|mastercard|amex|mpan)-nonce")
_ANDROID_PAY = re.compile(r"fake-android-pay(?:-(?P<brand>visa|mastercard|amex|discover))?-nonce")
_GATEWAY_REJECTED = {
    "fake-gateway-rejected-fraud-nonce": "fraud",
    "fake-gateway-rejected-risk-thresholds-nonce": "risk_threshold",
}


def classify_nonce(nonce: str) -> NonceBehaviour:
    """Braintree's fixed test nonces (reusable, unlike real ones). Anything else is unknown
    here; the sandbox's own client nonces (``tokencc_...``) are looked up by the vault."""
    if match := _VALID.fullmatch(nonce):
        variant = match.group("variant") or "visa"
        return _card(CARDS_BY_BRAND.get(variant) or INDICATOR_CARDS.get(variant, DEFAULT_CARD))
    if match := _PROCESSOR_DECLINED.fullmatch(nonce):
        card = CARDS_BY_BRAND.get(match.group("brand"), DEFAULT_CARD)
        return NonceBehaviour(Instrument("credit_card", card=card), PROCESSOR_DECLINED)
    if reason := _GATEWAY_REJECTED.get(nonce):
        return NonceBehaviour(
            Instrument("credit_card", card=DEFAULT_CARD),
            Outcome("gateway_rejected", gateway_rejection_reason=reason),
        )
    if nonce == "fake-processor-failure-jcb-nonce":
        return NonceBehaviour(
            Instrument("credit_card", card=CARDS_BY_BRAND["jcb"]),
            Outcome("failed", processor_response_code="3000"),
        )
    if match := _APPLE_PAY.fullmatch(nonce):
        # The MPAN (merchant token) variant carries a Visa.
        brand = match.group("brand").replace("mpan", "visa")
        card = CARDS_BY_BRAND[brand]
        return NonceBehaviour(apple_pay(card))
    if match := _ANDROID_PAY.fullmatch(nonce):
        # Braintree's plain Google Pay test nonce is a Discover card.
        return NonceBehaviour(google_pay(CARDS_BY_BRAND[match.group("brand") or "discover"]))
    if instrument := _FIXED_NONCES.get(nonce):
        return NonceBehaviour(instrument)
    if nonce == "fake-consumed-nonce":
        return NonceBehaviour(None, problem="consumed")
    if nonce == "fake-luhn-invalid-nonce":
        return NonceBehaviour(None, problem="card_number_invalid")
    return NonceBehaviour(None, problem="unknown")


def _card(card: Card) -> NonceBehaviour:
    return NonceBehaviour(Instrument("credit_card", card=card))


# --- card numbers (client-side tokenization) ------------------------------------------------
# Braintree's test cards that fail verification, with the processor response they get.
_FAILING_VERIFICATION: dict[str, Outcome] = {
    "4000111111111115": PROCESSOR_DECLINED,
    "5105105105105100": PROCESSOR_DECLINED,
    "378734493671000": PROCESSOR_DECLINED,
    "6011000990139424": PROCESSOR_DECLINED,
    "3566002020360505": Outcome("failed", processor_response_code="3000"),
}


def luhn_valid(number: str) -> bool:
    """The card number check digit (ISO/IEC 7812)."""
    if not number.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def card_brand(number: str) -> str:
    """Braintree's card_type for a number, from its issuer prefix."""
    two, three, four = int(number[:2]), int(number[:3]), int(number[:4])
    if number.startswith("4"):
        return "Visa"
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "MasterCard"
    if two in (34, 37):
        return "American Express"
    if four == 6011 or two == 65 or 644 <= three <= 649:
        return "Discover"
    if 3528 <= four <= 3589:
        return "JCB"
    if 300 <= three <= 305 or two in (36, 38, 39):
        return "Diners Club"
    if two == 62:
        return "UnionPay"
    if two == 50 or 56 <= two <= 69:
        return "Maestro"
    return "Unknown"


def card_from_number(number: str, expiration_month: str, expiration_year: str) -> NonceBehaviour:
    """The instrument a tokenized card becomes: only bin, last 4 and expiry are kept."""
    card = Card(card_brand(number), number[:6], number[-4:], expiration_month, expiration_year)
    return NonceBehaviour(Instrument("credit_card", card=card), _FAILING_VERIFICATION.get(number))


# --- amounts -------------------------------------------------------------------------------
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


def settlement_declines(amount: Decimal) -> bool:
    """4001.00-5000.99: the bank declines the settlement (bank transfers)."""
    return Decimal(4001) <= amount < Decimal(5001)


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
