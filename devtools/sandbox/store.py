"""The sandbox's transactions, kept in memory, and the rules that change them.

Every operation runs under one lock (shared with the vault) and returns a deep copy (a
snapshot), so the HTTP layer renders a consistent state while other requests go on. Settlement
is computed lazily from the clock whenever a transaction is read: the delays are just settings
and tests can use an injected clock or short delays. Cards go submitted_for_settlement →
settling → settled; bank transfers (SEPA, ACH) wait in settlement_pending, then the bank
settles or declines them. With ``record_settlements`` the store also remembers which
transactions settled (or were declined) by themselves, for the webhook dispatcher.
"""

from __future__ import annotations

import copy
import secrets
import string
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

from devtools.sandbox.scenarios import (
    SALE_NONCE_FAILURES,
    Instrument,
    Outcome,
    ValidationFailure,
    classify_amount,
    processor_response,
    settlement_declines,
)
from devtools.sandbox.vault import Vault
from devtools.sandbox.xml_codec import Parsed
from payments.money import MINOR_UNITS

Clock = Callable[[], datetime]
TransactionType = Literal["sale", "credit"]

# Statuses from which Braintree lets a transaction be voided, or refunded.
VOIDABLE_STATUSES = frozenset({"authorized", "submitted_for_settlement", "settlement_pending"})
REFUNDABLE_STATUSES = frozenset({"settled", "settling"})
# Statuses the clock moves forward for cards (a card's settlement_pending waits for an
# explicit transition; a bank transfer's is moved by the clock too).
_SETTLING_STATUSES = frozenset({"submitted_for_settlement", "settling"})
# Where settlement ends: what the webhook dispatcher announces.
FINAL_SETTLEMENT_STATUSES = frozenset({"settled", "settlement_declined"})
# A refund counts against the sale unless it was voided or never went through.
_DEAD_STATUSES = frozenset(
    {"voided", "failed", "processor_declined", "gateway_rejected", "settlement_declined"}
)
# Braintree-style ids: 8 characters of lowercase letters and digits.
_ID_ALPHABET = string.ascii_lowercase + string.digits


class UnknownTransaction(LookupError):
    """No transaction with that id (the HTTP layer answers 404, as Braintree does)."""


class UnsupportedSearch(ValueError):
    """A search criterion the sandbox does not implement (better refused than ignored: an
    ignored criterion would return other orders' transactions)."""


def _failure(code: str, attribute: str, message: str) -> ValidationFailure:
    return ValidationFailure(code, attribute, message)


AMOUNT_REQUIRED = _failure("81502", "amount", "Amount is required.")
AMOUNT_INVALID = _failure("81503", "amount", "Amount is an invalid format.")
AMOUNT_NEGATIVE = _failure("81501", "amount", "Amount cannot be negative.")
AMOUNT_NOT_POSITIVE = _failure("81531", "amount", "Amount must be greater than zero.")
PAYMENT_METHOD_REQUIRED = _failure("91508", "base", "Cannot determine payment method.")
PAYMENT_METHOD_CONFLICT = _failure(
    "91515", "base", "Cannot provide both payment_method_nonce and payment_method_token."
)
PAYMENT_METHOD_TOKEN_INVALID = _failure(
    "91518", "payment_method_token", "Payment method token is invalid."
)
TYPE_INVALID = _failure("91523", "type", "Transaction type is invalid.")
MERCHANT_ACCOUNT_INVALID = _failure(
    "91513", "merchant_account_id", "Merchant account ID is invalid."
)
CANNOT_VOID = _failure(
    "91504",
    "base",
    "Transaction can only be voided if status is authorized, submitted_for_settlement, "
    "or - for PayPal - settlement_pending.",
)
CANNOT_REFUND_CREDIT = _failure("91505", "base", "Cannot refund credit.")
CANNOT_REFUND_UNSETTLED = _failure(
    "91506", "base", "Cannot refund transaction unless it is settled."
)
ALREADY_REFUNDED = _failure("91512", "base", "Transaction has already been fully refunded.")
REFUND_TOO_LARGE = _failure("91521", "amount", "Refund amount is too large.")
CANNOT_SUBMIT = _failure(
    "91507", "base", "Cannot submit for settlement unless status is authorized."
)
SETTLEMENT_TOO_LARGE = _failure("91522", "amount", "Settlement amount is too large.")
CANNOT_SIMULATE_SETTLEMENT = _failure(
    "91575", "base", "Cannot simulate transaction settlement from its current status."
)
REQUEST_KEY_REUSED = _failure(
    "915232", "api_request_key", "API request key can be reused only with the same request."
)


@dataclass(slots=True)
class StatusEvent:
    status: str
    timestamp: datetime
    amount: Decimal


@dataclass(slots=True)
class SandboxTransaction:
    id: str
    type: TransactionType
    status: str
    amount: Decimal
    currency: str
    merchant_account_id: str
    order_id: str | None
    created_at: datetime
    updated_at: datetime
    instrument: Instrument
    processor_response_code: str | None = None
    processor_response_text: str | None = None
    processor_response_type: str | None = None
    processor_authorization_code: str | None = None
    gateway_rejection_reason: str | None = None
    # Set when a vaulted payment method was charged.
    payment_method_token: str | None = None
    customer_id: str | None = None
    # The bank's answer to a bank transfer's settlement.
    processor_settlement_response_code: str | None = None
    processor_settlement_response_text: str | None = None
    # The api_request_key of the request that created it, if any (shown by the admin API).
    request_key: str | None = None
    refund_ids: list[str] = field(default_factory=list)
    refunded_transaction_id: str | None = None
    # When it was submitted for settlement; the clock settles it from there.
    submitted_at: datetime | None = None
    status_history: list[StatusEvent] = field(default_factory=list)

    def move_to(self, status: str, at: datetime) -> None:
        self.status = status
        self.updated_at = at
        self.status_history.append(StatusEvent(status, at, self.amount))


@dataclass(frozen=True, slots=True)
class Result:
    """A write's answer: a transaction (success or decline) and/or validation failures."""

    transaction: SandboxTransaction | None = None
    failures: tuple[ValidationFailure, ...] = ()
    # True when the write created the transaction (HTTP 201 rather than 200).
    created: bool = False


@dataclass(frozen=True, slots=True)
class SaleRequest:
    amount: str | None
    payment_method_nonce: str | None
    order_id: str | None
    submit_for_settlement: bool
    merchant_account_id: str | None
    request_key: str | None
    type: str | None = "sale"
    payment_method_token: str | None = None


@dataclass(frozen=True, slots=True)
class _Payer:
    instrument: Instrument
    forced_outcome: Outcome | None
    token: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class _KeyRecord:
    fingerprint: tuple[object, ...]
    transaction_id: str
    created: bool


class TransactionStore:
    """Thread-safe; one instance per sandbox app."""

    def __init__(
        self,
        *,
        settle_after_seconds: float,
        clock: Clock,
        default_merchant_account_id: str,
        default_currency: str = "USD",
        merchant_account_currencies: Mapping[str, str] | None = None,
        bank_settle_after_seconds: float = 20.0,
        vault: Vault | None = None,
        record_settlements: bool = False,
    ) -> None:
        self._settle_after = timedelta(seconds=max(settle_after_seconds, 0.0))
        self._bank_settle_after = timedelta(seconds=max(bank_settle_after_seconds, 0.0))
        self._clock = clock
        self._default_account = default_merchant_account_id
        self._default_currency = default_currency
        self._account_currencies = dict(merchant_account_currencies or {})
        self.vault = vault or Vault(clock=clock)
        # One lock for transactions and vault: a nonce is used up with the sale it pays for.
        self._lock: threading.RLock = self.vault.lock
        self._transactions: dict[str, SandboxTransaction] = {}
        self._request_keys: dict[str, _KeyRecord] = {}
        # Ids of transactions that reached a final settlement status by themselves, in order;
        # None when nobody collects them (no webhooks).
        self._settlements: list[str] | None = [] if record_settlements else None

    # --- reads ---------------------------------------------------------------------------------
    def get(self, transaction_id: str) -> SandboxTransaction:
        with self._lock:
            return self._snapshot(self._get(transaction_id))

    def all(self) -> list[SandboxTransaction]:
        with self._lock:
            return [self._snapshot(tx) for tx in self._transactions.values()]

    def search(self, criteria: Mapping[str, Parsed]) -> list[SandboxTransaction]:
        """Transactions matching every criterion, oldest first. Supports what the SDK sends for
        ``TransactionSearch.id/order_id`` (is, is_not, starts_with, ends_with, contains) and
        ``ids/status/type.in_list``; anything else raises UnsupportedSearch."""
        with self._lock:
            matches = []
            for tx in self._transactions.values():
                self._advance(tx)
                if all(_matches(tx, name, condition) for name, condition in criteria.items()):
                    matches.append(self._snapshot(tx))
            return matches

    def take_settlements(self) -> list[SandboxTransaction]:
        """Bring every transaction up to the clock, then hand over (once) those that settled
        or had their settlement declined by themselves since the last call."""
        with self._lock:
            for tx in self._transactions.values():
                self._advance(tx)
            if not self._settlements:
                return []
            settled = [copy.deepcopy(self._transactions[tx_id]) for tx_id in self._settlements]
            self._settlements.clear()
            return settled

    # --- writes --------------------------------------------------------------------------------
    def sale(self, request: SaleRequest) -> Result:
        fingerprint: tuple[object, ...] = (
            "sale",
            request.amount,
            request.payment_method_nonce,
            request.payment_method_token,
            request.order_id,
            request.submit_for_settlement,
            request.merchant_account_id,
        )
        with self._lock:
            if (replayed := self._replay(request.request_key, fingerprint)) is not None:
                return replayed
            if request.type != "sale":
                return Result(failures=(TYPE_INVALID,))

            failures: list[ValidationFailure] = []
            account = request.merchant_account_id or self._default_account
            currency = self._currency_of(account)
            if currency is None:
                failures.append(MERCHANT_ACCOUNT_INVALID)
                currency = self._default_currency
            amount = _parse_amount(request.amount, currency)
            if isinstance(amount, ValidationFailure):
                failures.append(amount)
            payer = self._payer(request)
            if isinstance(payer, ValidationFailure):
                failures.append(payer)
            if failures:
                # Nothing was created: the key (and the nonce) stay free for a corrected retry.
                return Result(failures=tuple(failures))
            assert isinstance(amount, Decimal) and isinstance(payer, _Payer)

            outcome = payer.forced_outcome or classify_amount(amount)
            tx = self._new_sale(request, account, currency, amount, payer, outcome)
            if request.payment_method_nonce:
                self.vault.consume_nonce(request.payment_method_nonce)
            self._remember(request.request_key, fingerprint, tx, created=True)
            # The answer shows the sale as created (submitted_for_settlement, as Braintree
            # answers), even with no settlement delay; later reads show it settled.
            return Result(copy.deepcopy(tx), created=True)

    def refund(
        self,
        transaction_id: str,
        *,
        amount: str | None,
        order_id: str | None,
        request_key: str | None,
    ) -> Result:
        """Empty amount = what remains; partial refunds until the sale amount is used up."""
        fingerprint: tuple[object, ...] = ("refund", transaction_id, amount or "", order_id)
        with self._lock:
            sale = self._get(transaction_id)
            if (replayed := self._replay(request_key, fingerprint)) is not None:
                return replayed
            self._advance(sale)
            if sale.type != "sale":
                return Result(failures=(CANNOT_REFUND_CREDIT,))
            if sale.status not in REFUNDABLE_STATUSES:
                return Result(failures=(CANNOT_REFUND_UNSETTLED,))
            remaining = sale.amount - self._refunded_total(sale)
            if remaining <= 0:
                return Result(failures=(ALREADY_REFUNDED,))
            value = _parse_amount(amount, sale.currency) if amount else remaining
            if isinstance(value, ValidationFailure):
                return Result(failures=(value,))
            if value > remaining:
                return Result(failures=(REFUND_TOO_LARGE,))

            now = self._clock()
            text, kind = processor_response("1002")
            credit = SandboxTransaction(
                id=self._new_id(),
                type="credit",
                # A refund to a bank account waits for the bank like the sale did.
                status=(
                    "settlement_pending"
                    if sale.instrument.is_bank_transfer
                    else "submitted_for_settlement"
                ),
                amount=value,
                currency=sale.currency,
                merchant_account_id=sale.merchant_account_id,
                order_id=order_id or sale.order_id,
                created_at=now,
                updated_at=now,
                instrument=sale.instrument,
                payment_method_token=sale.payment_method_token,
                customer_id=sale.customer_id,
                processor_response_code="1002",
                processor_response_text=text,
                processor_response_type=kind,
                request_key=request_key,
                refunded_transaction_id=sale.id,
                submitted_at=now,
            )
            credit.status_history.append(StatusEvent(credit.status, now, value))
            self._transactions[credit.id] = credit
            sale.refund_ids.append(credit.id)
            sale.updated_at = now
            self._remember(request_key, fingerprint, credit, created=True)
            return Result(copy.deepcopy(credit), created=True)

    def void(self, transaction_id: str, *, request_key: str | None) -> Result:
        fingerprint: tuple[object, ...] = ("void", transaction_id)
        with self._lock:
            tx = self._get(transaction_id)
            if (replayed := self._replay(request_key, fingerprint)) is not None:
                return replayed
            self._advance(tx)
            if tx.status not in VOIDABLE_STATUSES:
                return Result(failures=(CANNOT_VOID,))
            tx.move_to("voided", self._clock())
            tx.submitted_at = None
            self._remember(request_key, fingerprint, tx, created=False)
            return Result(self._snapshot(tx))

    def submit_for_settlement(
        self, transaction_id: str, *, amount: str | None, request_key: str | None
    ) -> Result:
        """Capture an authorization, optionally for less than was authorized."""
        fingerprint: tuple[object, ...] = ("submit_for_settlement", transaction_id, amount or "")
        with self._lock:
            tx = self._get(transaction_id)
            if (replayed := self._replay(request_key, fingerprint)) is not None:
                return replayed
            self._advance(tx)
            if tx.status != "authorized":
                return Result(failures=(CANNOT_SUBMIT,))
            if amount:
                value = _parse_amount(amount, tx.currency)
                if isinstance(value, ValidationFailure):
                    return Result(failures=(value,))
                if value > tx.amount:
                    return Result(failures=(SETTLEMENT_TOO_LARGE,))
                tx.amount = value
            now = self._clock()
            tx.submitted_at = now
            tx.move_to("submitted_for_settlement", now)
            self._remember(request_key, fingerprint, tx, created=False)
            return Result(self._snapshot(tx))

    def simulate_settlement(self, transaction_id: str, target_status: str) -> Result:
        """The SDK's ``gateway.testing`` transitions: settled, settlement_declined or
        settlement_pending, from submitted_for_settlement/settling (or settlement_pending)."""
        with self._lock:
            tx = self._get(transaction_id)
            self._advance(tx)
            allowed = _SETTLING_STATUSES
            if target_status != "settlement_pending":
                allowed = allowed | {"settlement_pending"}
            if tx.status not in allowed:
                return Result(failures=(CANNOT_SIMULATE_SETTLEMENT,))
            tx.move_to(target_status, self._clock())
            return Result(self._snapshot(tx))

    # --- internals -----------------------------------------------------------------------------
    def _get(self, transaction_id: str) -> SandboxTransaction:
        try:
            return self._transactions[transaction_id]
        except KeyError:
            raise UnknownTransaction(transaction_id) from None

    def _snapshot(self, tx: SandboxTransaction) -> SandboxTransaction:
        self._advance(tx)
        return copy.deepcopy(tx)

    def _advance(self, tx: SandboxTransaction) -> None:
        """Apply the settlement the clock implies, with the history stamped at the moments the
        transitions happened. Cards: settling at half the delay, settled at the full delay.
        Bank transfers: settled (or, for a sale of 4001.00-5000.99, settlement_declined) once
        the bank delay has passed."""
        if tx.submitted_at is None:
            return
        if tx.instrument.is_bank_transfer:
            self._advance_bank_transfer(tx)
            return
        if tx.status not in _SETTLING_STATUSES:
            return
        now = self._clock()
        settled_at = tx.submitted_at + self._settle_after
        settling_at = tx.submitted_at + self._settle_after / 2
        # With no delay both moments coincide and the transaction goes straight to settled.
        if (
            tx.status == "submitted_for_settlement"
            and settling_at < settled_at
            and settling_at <= now
        ):
            tx.move_to("settling", settling_at)
        if now >= settled_at:
            tx.move_to("settled", settled_at)
            self._record_settlement(tx)

    def _advance_bank_transfer(self, tx: SandboxTransaction) -> None:
        assert tx.submitted_at is not None
        answered_at = tx.submitted_at + self._bank_settle_after
        if tx.status != "settlement_pending" or self._clock() < answered_at:
            return
        if tx.type == "sale" and settlement_declines(tx.amount):
            tx.processor_settlement_response_code = "4001"
            tx.processor_settlement_response_text = "Settlement Declined"
            tx.move_to("settlement_declined", answered_at)
        else:
            tx.processor_settlement_response_code = "4000"
            tx.processor_settlement_response_text = "Settled"
            tx.move_to("settled", answered_at)
        self._record_settlement(tx)

    def _record_settlement(self, tx: SandboxTransaction) -> None:
        if self._settlements is not None and tx.status in FINAL_SETTLEMENT_STATUSES:
            self._settlements.append(tx.id)

    def _payer(self, request: SaleRequest) -> _Payer | ValidationFailure:
        """What pays for a sale: the nonce's instrument or the vaulted method's."""
        nonce, token = request.payment_method_nonce, request.payment_method_token
        if nonce and token:
            return PAYMENT_METHOD_CONFLICT
        if token:
            method = self.vault.find_payment_method(token)
            if method is None:
                return PAYMENT_METHOD_TOKEN_INVALID
            return _Payer(method.instrument, method.forced_outcome, token, method.customer_id)
        if not nonce:
            return PAYMENT_METHOD_REQUIRED
        behaviour = self.vault.resolve_nonce(nonce)
        if behaviour.problem is not None:
            return SALE_NONCE_FAILURES[behaviour.problem]
        assert behaviour.instrument is not None
        return _Payer(behaviour.instrument, behaviour.forced_outcome)

    def _replay(self, request_key: str | None, fingerprint: tuple[object, ...]) -> Result | None:
        """The original result for a repeated api_request_key, or 915232 if the request differs."""
        if not request_key:
            return None
        record = self._request_keys.get(request_key)
        if record is None:
            return None
        if record.fingerprint != fingerprint:
            return Result(failures=(REQUEST_KEY_REUSED,))
        tx = self._transactions[record.transaction_id]
        return Result(self._snapshot(tx), created=record.created)

    def _remember(
        self,
        request_key: str | None,
        fingerprint: tuple[object, ...],
        tx: SandboxTransaction,
        *,
        created: bool,
    ) -> None:
        if request_key:
            self._request_keys[request_key] = _KeyRecord(fingerprint, tx.id, created)

    def _currency_of(self, merchant_account_id: str) -> str | None:
        """Currency of a merchant account: the configured one, else an ISO code at the end of
        its id ("acme-EUR", "eur"), else the default account's; None for an unknown account."""
        if merchant_account_id in self._account_currencies:
            return self._account_currencies[merchant_account_id]
        if merchant_account_id == self._default_account:
            return self._default_currency
        suffix = merchant_account_id.replace("_", "-").rsplit("-", 1)[-1].upper()
        return suffix if suffix in MINOR_UNITS else None

    def _refunded_total(self, sale: SandboxTransaction) -> Decimal:
        return sum(
            (
                self._transactions[refund_id].amount
                for refund_id in sale.refund_ids
                if self._transactions[refund_id].status not in _DEAD_STATUSES
            ),
            Decimal(0),
        )

    def _new_id(self) -> str:
        while True:
            candidate = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
            if candidate not in self._transactions:
                return candidate

    def _new_sale(
        self,
        request: SaleRequest,
        account: str,
        currency: str,
        amount: Decimal,
        payer: _Payer,
        outcome: Outcome,
    ) -> SandboxTransaction:
        now = self._clock()
        tx = SandboxTransaction(
            id=self._new_id(),
            type="sale",
            status=outcome.kind,
            amount=amount,
            currency=currency,
            merchant_account_id=account,
            order_id=request.order_id or None,
            created_at=now,
            updated_at=now,
            instrument=payer.instrument,
            payment_method_token=payer.token,
            customer_id=payer.customer_id,
            request_key=request.request_key,
            gateway_rejection_reason=outcome.gateway_rejection_reason,
        )
        if outcome.processor_response_code is not None:
            text, kind = processor_response(outcome.processor_response_code)
            tx.processor_response_code = outcome.processor_response_code
            tx.processor_response_text = text
            tx.processor_response_type = kind
        if outcome.kind == "approved":
            tx.processor_authorization_code = "".join(
                secrets.choice(string.digits) for _ in range(6)
            )
            tx.move_to("authorized", now)
            if payer.instrument.is_bank_transfer:
                # Bank transfers are always captured, then wait for the bank.
                tx.submitted_at = now
                tx.move_to("settlement_pending", now)
            elif request.submit_for_settlement:
                tx.submitted_at = now
                tx.move_to("submitted_for_settlement", now)
        else:
            tx.move_to(outcome.kind, now)
        self._transactions[tx.id] = tx
        return tx


def _parse_amount(raw: str | None, currency: str) -> Decimal | ValidationFailure:
    """A positive decimal with at most the currency's places, as Braintree validates it."""
    if not raw or not raw.strip():
        return AMOUNT_REQUIRED
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        return AMOUNT_INVALID
    if not value.is_finite():
        return AMOUNT_INVALID
    places = MINOR_UNITS.get(currency, 2)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        return AMOUNT_INVALID
    if value < 0:
        return AMOUNT_NEGATIVE
    if value == 0:
        return AMOUNT_NOT_POSITIVE
    return value.quantize(Decimal(1).scaleb(-places))


_TEXT_FIELDS = {"id": "id", "order_id": "order_id"}
_LIST_FIELDS = {"ids": "id", "status": "status", "type": "type"}


def _matches(tx: SandboxTransaction, name: str, condition: Parsed) -> bool:
    if name in _TEXT_FIELDS and isinstance(condition, dict):
        value = getattr(tx, _TEXT_FIELDS[name]) or ""
        return all(_text_matches(value, op, operand) for op, operand in condition.items())
    if name in _LIST_FIELDS and isinstance(condition, list):
        return str(getattr(tx, _LIST_FIELDS[name])) in {str(item) for item in condition}
    raise UnsupportedSearch(f"search criterion {name!r} is not supported by the sandbox")


def _text_matches(value: str, operator: str, operand: Parsed) -> bool:
    text = "" if operand is None else str(operand)
    checks: dict[str, Callable[[], bool]] = {
        "is": lambda: value == text,
        "is_not": lambda: value != text,
        "starts_with": lambda: value.startswith(text),
        "ends_with": lambda: value.endswith(text),
        "contains": lambda: text in value,
    }
    if operator not in checks:
        raise UnsupportedSearch(f"search operator {operator!r} is not supported by the sandbox")
    return checks[operator]()
