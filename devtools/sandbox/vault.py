"""The sandbox's vault: customers, stored payment methods, and the nonces it issues itself.

Nonces come from two places: Braintree's fixed test nonces (``fake-valid-nonce``...,
reusable, see ``scenarios``) and the sandbox's client-side tokenization endpoint, which plays
the part of Braintree's client SDKs: the card number goes to the gateway, the service only
ever sees a single-use ``tokencc_...`` nonce. Only the bin, last 4 and expiry of a tokenized
card are kept; the full number and the CVV are dropped as soon as they are checked.

One lock guards the vault and the transaction store (which shares it), so a nonce is resolved
and consumed atomically with the transaction or payment method it creates.
"""

from __future__ import annotations

import copy
import re
import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from devtools.sandbox.scenarios import (
    DEFAULT_CARD,
    VAULT_NONCE_FAILURES,
    Instrument,
    NonceBehaviour,
    Outcome,
    PayPalPayer,
    ValidationFailure,
    card_from_number,
    classify_nonce,
    luhn_valid,
    processor_response,
)

Clock = Callable[[], datetime]

CLIENT_NONCE_PREFIX = "tokencc_sb_"
_TOKEN_ALPHABET = string.ascii_lowercase + string.digits
# Braintree: letters, digits, - and _; at most 36 characters; "all" and "new" are reserved.
_CUSTOMER_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
_RESERVED_CUSTOMER_IDS = frozenset({"all", "new"})


class UnknownCustomer(LookupError):
    """No customer with that id (the HTTP layer answers 404, as Braintree does)."""


class UnknownPaymentMethod(LookupError):
    """No payment method with that token (404)."""


def _failure(code: str, attribute: str, message: str, path: tuple[str, ...]) -> ValidationFailure:
    return ValidationFailure(code, attribute, message, path=path)


CUSTOMER_ID_IN_USE = _failure("91609", "id", "Customer ID has already been taken.", ("customer",))
CUSTOMER_ID_INVALID = _failure("91610", "id", "Customer ID is invalid.", ("customer",))
CUSTOMER_ID_NOT_ALLOWED = _failure("91611", "id", "Customer ID is not allowed.", ("customer",))
CUSTOMER_ID_REQUIRED = _failure(
    "93104", "customer_id", "Customer ID is required.", ("payment_method",)
)
CUSTOMER_ID_UNKNOWN = _failure(
    "93105", "customer_id", "Customer ID is invalid.", ("payment_method",)
)
NONCE_REQUIRED = _failure(
    "93103", "payment_method_nonce", "Nonce is required.", ("payment_method",)
)
TOKEN_IN_USE = _failure("91705", "token", "Token is in use.", ("payment_method",))
# What the tokenization endpoint refuses (Braintree's credit card codes).
NUMBER_REQUIRED = _failure("81714", "number", "Credit card number is required.", ("credit_card",))
NUMBER_INVALID = _failure("81715", "number", "Credit card number is invalid.", ("credit_card",))
NUMBER_LENGTH_INVALID = _failure(
    "81716", "number", "Credit card number must be 12-19 digits.", ("credit_card",)
)
EXPIRATION_MONTH_INVALID = _failure(
    "81712", "expiration_month", "Expiration month is invalid.", ("credit_card",)
)
EXPIRATION_YEAR_INVALID = _failure(
    "81713", "expiration_year", "Expiration year is invalid.", ("credit_card",)
)
CVV_INVALID = _failure(
    "81707",
    "cvv",
    "CVV must be 4 digits for American Express and 3 digits for other card types.",
    ("credit_card",),
)


@dataclass(slots=True)
class SandboxCustomer:
    id: str
    created_at: datetime
    updated_at: datetime
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    company: str | None = None
    phone: str | None = None


@dataclass(slots=True)
class VaultedMethod:
    token: str
    customer_id: str
    instrument: Instrument
    created_at: datetime
    updated_at: datetime
    default: bool = False
    # A card that fails verification declines every charge too.
    forced_outcome: Outcome | None = None


@dataclass(frozen=True, slots=True)
class Verification:
    """A failed card verification (payment_method.create with verify_card)."""

    id: str
    status: str  # processor_declined, gateway_rejected, failed
    instrument: Instrument
    created_at: datetime
    processor_response_code: str | None
    processor_response_text: str | None
    processor_response_type: str | None
    gateway_rejection_reason: str | None = None

    @property
    def message(self) -> str:
        if self.status == "gateway_rejected":
            return f"Gateway Rejected: {self.gateway_rejection_reason}"
        return self.processor_response_text or self.status


@dataclass(frozen=True, slots=True)
class VaultingAnswer:
    """A payment method, or validation failures, or a failed verification."""

    method: VaultedMethod | None = None
    failures: tuple[ValidationFailure, ...] = ()
    verification: Verification | None = None


@dataclass(slots=True)
class _ClientNonce:
    behaviour: NonceBehaviour
    consumed: bool = False


@dataclass(frozen=True, slots=True)
class DescribedNonce:
    """What ``payment_method_nonce.find`` tells of a nonce the gateway knows."""

    instrument: Instrument
    # Used by a sale or a vault: Braintree still finds it, but nothing can use it again.
    consumed: bool


@dataclass(frozen=True, slots=True)
class TokenizedCard:
    """What the tokenization endpoint answers (as Braintree's client SDKs get it)."""

    nonce: str
    card_type: str
    bin: str
    last_4: str


class Vault:
    """Thread-safe through ``lock``, which the transaction store shares."""

    def __init__(self, *, clock: Clock) -> None:
        self.lock = threading.RLock()
        self._clock = clock
        self._customers: dict[str, SandboxCustomer] = {}
        self._methods: dict[str, VaultedMethod] = {}
        self._client_nonces: dict[str, _ClientNonce] = {}

    # --- client-side tokenization -------------------------------------------------------------
    def tokenize_card(
        self, number: str, expiration_month: str, expiration_year: str, cvv: str | None
    ) -> TokenizedCard | ValidationFailure:
        """A single-use nonce for a card, or why the card is refused. The number and CVV are
        only checked, never stored."""
        digits = re.sub(r"[ -]", "", number)
        if not digits:
            return NUMBER_REQUIRED
        if not digits.isdigit():
            return NUMBER_INVALID
        if not 12 <= len(digits) <= 19:
            return NUMBER_LENGTH_INVALID
        if not luhn_valid(digits):
            return NUMBER_INVALID
        month = expiration_month.strip()
        if not month.isdigit() or not 1 <= int(month) <= 12:
            return EXPIRATION_MONTH_INVALID
        year = expiration_year.strip()
        if not year.isdigit() or len(year) not in (2, 4):
            return EXPIRATION_YEAR_INVALID
        if len(year) == 2:
            year = f"20{year}"
        if cvv is not None:
            expected = 4 if digits.startswith(("34", "37")) else 3
            if not cvv.isdigit() or len(cvv) != expected:
                return CVV_INVALID
        behaviour = card_from_number(digits, f"{int(month):02d}", year)
        with self.lock:
            nonce = self._new_nonce()
            self._client_nonces[nonce] = _ClientNonce(behaviour)
        card = behaviour.instrument.card if behaviour.instrument else None
        assert card is not None
        return TokenizedCard(nonce, card.card_type, card.bin, card.last_4)

    def tokenize_paypal(self, email: str) -> str:
        """A single-use nonce for a one-time PayPal payment by the buyer ``email``, as the
        client SDK's PayPal checkout gets one (the sandbox takes the address as given)."""
        payer = PayPalPayer(email, "PAYER" + self._random(10).upper(), "John", "Doe")
        with self.lock:
            nonce = self._new_nonce()
            self._client_nonces[nonce] = _ClientNonce(
                NonceBehaviour(Instrument("paypal_account", paypal=payer))
            )
        return nonce

    def resolve_nonce(self, nonce: str) -> NonceBehaviour:
        """What ``nonce`` pays with, without using it up."""
        with self.lock:
            client = self._client_nonces.get(nonce)
            if client is None:
                return classify_nonce(nonce)
            if client.consumed:
                return NonceBehaviour(None, problem="consumed")
            return client.behaviour

    def describe_nonce(self, nonce: str) -> DescribedNonce | None:
        """What ``nonce`` pays with, for a look-up that must not use it up (a real Braintree
        nonce can still pay after ``payment_method_nonce.find``). None for a nonce the
        gateway does not know: never issued, or Braintree's Luhn-invalid test nonce (whose
        card was never accepted)."""
        with self.lock:
            client = self._client_nonces.get(nonce)
            if client is not None:
                assert client.behaviour.instrument is not None  # tokenization always sets it
                return DescribedNonce(client.behaviour.instrument, client.consumed)
        behaviour = classify_nonce(nonce)
        if behaviour.problem == "consumed":
            # fake-consumed-nonce: the nonce of a Visa test card that was already used.
            return DescribedNonce(Instrument("credit_card", card=DEFAULT_CARD), consumed=True)
        if behaviour.instrument is None:
            return None
        return DescribedNonce(behaviour.instrument, consumed=False)

    def consume_nonce(self, nonce: str) -> None:
        """A sandbox nonce is single use (Braintree's fixed test nonces are not)."""
        with self.lock:
            if (client := self._client_nonces.get(nonce)) is not None:
                client.consumed = True

    # --- customers ----------------------------------------------------------------------------
    def create_customer(
        self, customer_id: str | None, **details: str | None
    ) -> SandboxCustomer | ValidationFailure:
        with self.lock:
            if customer_id is None or customer_id == "":
                customer_id = self._new_customer_id()
            elif customer_id in _RESERVED_CUSTOMER_IDS:
                return CUSTOMER_ID_NOT_ALLOWED
            elif not _CUSTOMER_ID.fullmatch(customer_id):
                return CUSTOMER_ID_INVALID
            elif customer_id in self._customers:
                return CUSTOMER_ID_IN_USE
            now = self._clock()
            customer = SandboxCustomer(customer_id, now, now, **details)
            self._customers[customer_id] = customer
            return copy.deepcopy(customer)

    def customer(self, customer_id: str) -> tuple[SandboxCustomer, list[VaultedMethod]]:
        """The customer and their payment methods, oldest first."""
        with self.lock:
            customer = self._customers.get(customer_id)
            if customer is None:
                raise UnknownCustomer(customer_id)
            methods = [m for m in self._methods.values() if m.customer_id == customer_id]
            return copy.deepcopy(customer), copy.deepcopy(methods)

    # --- payment methods ----------------------------------------------------------------------
    def create_payment_method(
        self,
        *,
        customer_id: str | None,
        nonce: str | None,
        token: str | None = None,
        verify_card: bool = False,
        make_default: bool = False,
    ) -> VaultingAnswer:
        """Vault what ``nonce`` pays with for ``customer_id``. With ``verify_card`` a card that
        fails verification is refused (and its nonce used up), as Braintree does."""
        with self.lock:
            failures: list[ValidationFailure] = []
            if not customer_id:
                failures.append(CUSTOMER_ID_REQUIRED)
            elif customer_id not in self._customers:
                failures.append(CUSTOMER_ID_UNKNOWN)
            behaviour = None
            if not nonce:
                failures.append(NONCE_REQUIRED)
            else:
                behaviour = self.resolve_nonce(nonce)
                problem = behaviour.problem
                paypal = behaviour.instrument.paypal if behaviour.instrument else None
                if problem is None and paypal is not None and paypal.billing_agreement_id is None:
                    problem = "one_time_paypal"
                if problem is not None:
                    failures.append(VAULT_NONCE_FAILURES[problem])
            if token and token in self._methods:
                failures.append(TOKEN_IN_USE)
            if failures:
                return VaultingAnswer(failures=tuple(failures))
            assert customer_id and nonce and behaviour is not None
            instrument = behaviour.instrument
            assert instrument is not None

            now = self._clock()
            outcome = behaviour.forced_outcome
            if verify_card and instrument.type == "credit_card" and outcome is not None:
                self.consume_nonce(nonce)
                return VaultingAnswer(verification=self._failed_verification(instrument, outcome))
            is_first = not any(m.customer_id == customer_id for m in self._methods.values())
            method = VaultedMethod(
                token=token or self._new_token(),
                customer_id=customer_id,
                instrument=instrument,
                created_at=now,
                updated_at=now,
                default=is_first or make_default,
                forced_outcome=outcome,
            )
            if method.default:
                for other in self._methods.values():
                    if other.customer_id == customer_id:
                        other.default = False
            self._methods[method.token] = method
            self.consume_nonce(nonce)
            return VaultingAnswer(method=copy.deepcopy(method))

    def payment_method(self, token: str) -> VaultedMethod:
        with self.lock:
            method = self._methods.get(token)
            if method is None:
                raise UnknownPaymentMethod(token)
            return copy.deepcopy(method)

    def find_payment_method(self, token: str) -> VaultedMethod | None:
        with self.lock:
            method = self._methods.get(token)
            return copy.deepcopy(method) if method is not None else None

    def delete_payment_method(self, token: str) -> None:
        with self.lock:
            method = self._methods.pop(token, None)
            if method is None:
                raise UnknownPaymentMethod(token)
            if method.default:
                # As Braintree does, the customer's next method becomes the default.
                for other in self._methods.values():
                    if other.customer_id == method.customer_id:
                        other.default = True
                        break

    # --- internals ----------------------------------------------------------------------------
    def _failed_verification(self, instrument: Instrument, outcome: Outcome) -> Verification:
        code = outcome.processor_response_code
        text, kind = processor_response(code) if code else (None, None)
        return Verification(
            id=self._random(8),
            status=outcome.kind,
            instrument=instrument,
            created_at=self._clock(),
            processor_response_code=code,
            processor_response_text=text,
            processor_response_type=kind,
            gateway_rejection_reason=outcome.gateway_rejection_reason,
        )

    def _new_nonce(self) -> str:
        # Braintree's client nonces look like tokencc_bc_xxxxxx_xxxxxx_...; ours are marked sb.
        while True:
            candidate = CLIENT_NONCE_PREFIX + "_".join(self._random(6) for _ in range(4))
            if candidate not in self._client_nonces:
                return candidate

    def _new_token(self) -> str:
        while True:
            candidate = self._random(7)
            if candidate not in self._methods:
                return candidate

    def _new_customer_id(self) -> str:
        while True:
            candidate = "".join(secrets.choice(string.digits) for _ in range(9))
            if candidate not in self._customers:
                return candidate

    @staticmethod
    def _random(length: int) -> str:
        return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(length))
