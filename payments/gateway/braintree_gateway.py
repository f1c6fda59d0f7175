"""The PaymentGateway implemented with the official braintree SDK.

The only module of the service that imports ``braintree``. It turns the SDK's results into
``SaleOutcome``/``ReversalOutcome``/``VaultOutcome`` (declines are results), the instrument
blocks of transactions and payment methods into ``InstrumentDetails`` (never a full number),
verified webhooks into ``WebhookEvent``, and the SDK's exceptions into the service's gateway
errors:

- ``GatewayUnavailable``: timeouts, dropped connections, 408/429/5xx, unexpected statuses
  (a proxy's 502), unparseable bodies, and 915233 (same request key still in flight). The
  outcome is unknown; retrying with the same request key is safe, since Braintree answers a
  repeated ``api_request_key`` with the original transaction instead of charging again.
- ``GatewayMisconfigured``: 401/403/426 and SDK configuration errors; retrying cannot help.
- ``GatewayNotFound``: 404, the transaction id is unknown; its ``PaymentMethodNotFound`` when
  a payment method to describe is unknown (or its nonce expired or used).
- ``GatewayAdapterBug``: an AttributeError, KeyError or TypeError raised by this module's own
  code (or by the SDK's checks of the arguments this module built), logged as an error with
  its traceback. The same exceptions raised while the SDK reads a malformed answer are
  ``GatewayUnavailable``: where the exception was raised tells them apart.
- ``GatewayRequestRejected``: any other 4xx (400 for a field the gateway cannot read, 409,
  413, 415, a 422 without Braintree's error document...): the request itself is wrong, nothing
  happened, and the same request is refused again. Told apart by the HTTP status, in the SDK's
  HTTP strategy (``_ClassifyingHttp``), before the SDK flattens it into ``UnexpectedError``.

A webhook whose signature does not verify, or that cannot be decoded, is ``InvalidWebhook``.

What the gateway says is stored, so every text that lands in a bounded column (codes,
statuses, messages, what is shown of an instrument) leaves here cut to that column's width
(``payments.db.columns``): PostgreSQL would refuse a longer one, and the activity recording it
would be retried for ever. Identifiers (transaction ids) are never cut: a cut id names nothing.

The SDK is synchronous and thread-safe per call (one requests session per thread), so one
instance can serve an activity thread pool.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from xml.parsers.expat import ExpatError

import braintree
import requests
import structlog
from braintree.exceptions.authentication_error import AuthenticationError
from braintree.exceptions.authorization_error import AuthorizationError
from braintree.exceptions.braintree_error import BraintreeError
from braintree.exceptions.configuration_error import ConfigurationError
from braintree.exceptions.gateway_timeout_error import GatewayTimeoutError
from braintree.exceptions.http.connection_error import ConnectionError as HttpConnectionError
from braintree.exceptions.http.invalid_response_error import InvalidResponseError
from braintree.exceptions.http.timeout_error import TimeoutError as HttpTimeoutError
from braintree.exceptions.invalid_challenge_error import InvalidChallengeError
from braintree.exceptions.invalid_signature_error import InvalidSignatureError
from braintree.exceptions.not_found_error import NotFoundError
from braintree.exceptions.request_timeout_error import RequestTimeoutError
from braintree.exceptions.server_error import ServerError
from braintree.exceptions.service_unavailable_error import ServiceUnavailableError
from braintree.exceptions.too_many_requests_error import TooManyRequestsError
from braintree.exceptions.unexpected_error import UnexpectedError
from braintree.exceptions.upgrade_required_error import UpgradeRequiredError
from braintree.util.http import Http
from braintree.util.xml_util import XmlUtil

from payments.config import GatewaySettings
from payments.db import columns
from payments.db.columns import cut
from payments.errors import (
    GatewayAdapterBug,
    GatewayError,
    GatewayMisconfigured,
    GatewayNotFound,
    GatewayRequestRejected,
    GatewayUnavailable,
    InvalidWebhook,
    UnsupportedCurrency,
)
from payments.gateway.profiles import nonce_profile, vaulted_profile
from payments.gateway.types import (
    GatewayTransaction,
    InstrumentDetails,
    PaymentMethodNotFound,
    PaymentMethodProfile,
    ReversalOutcome,
    SaleOutcome,
    VaultedPaymentMethod,
    VaultOutcome,
    WebhookEvent,
)
from payments.money import Money, minor_units

log = structlog.get_logger(__name__)

T = TypeVar("T")

# --- error classification ---------------------------------------------------------------------
# Order matters: ConfigurationError and the http.* transport errors subclass UnexpectedError,
# so they are matched before the UnexpectedError catch-all below.
_MISCONFIGURED: tuple[type[Exception], ...] = (
    AuthenticationError,  # 401: wrong key pair or merchant id
    AuthorizationError,  # 403: the key lacks a permission
    UpgradeRequiredError,  # 426: the SDK's API version is retired
    ConfigurationError,  # the SDK refused its own configuration
)
_UNAVAILABLE: tuple[type[Exception], ...] = (
    RequestTimeoutError,  # 408 (also the SDK's "search timeout")
    TooManyRequestsError,  # 429: rate limited, later attempts can pass
    ServerError,  # 500
    ServiceUnavailableError,  # 503
    GatewayTimeoutError,  # 504
    HttpConnectionError,  # refused or dropped connection (wrap_http_exceptions=True)
    HttpTimeoutError,  # ReadTimeoutError / ConnectTimeoutError and other requests timeouts
    InvalidResponseError,  # requests' HTTPError
)
# What the SDK raises while parsing a body that is not the XML it expects: a response
# truncated by a proxy or missing a field (the request may or may not have taken effect), or a
# webhook payload, signed or not, with bad base64 (binascii.Error is a ValueError), non-ASCII
# text or XML that is not a notification.
_UNPARSEABLE: tuple[type[Exception], ...] = (
    ExpatError,
    AttributeError,
    KeyError,
    TypeError,
    ValueError,
    InvalidOperation,
)
# Of those, the ones that are also what a programming mistake raises. Where they come from
# decides (_raised_by_our_code): the SDK reading an answer that lacks what it expects, or our
# adapter code (or the SDK refusing the arguments it built).
_BUG_SHAPED: tuple[type[Exception], ...] = (AttributeError, KeyError, TypeError)
_SDK_DIR = os.path.dirname(braintree.__file__) + os.sep
_OUR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # payments/
# SDK code that checks the arguments of a request before anything is sent (Resource.verify_keys
# raises KeyError("Invalid keys: ..."), search nodes AttributeError for a value outside their
# list): an error there is a mistake in what the adapter asked, not in what the gateway said.
_SDK_ARGUMENT_CHECKS = frozenset({"verify_keys", "in_list"})


def _raised_by_our_code(exc: BaseException) -> bool:
    """True if the innermost frame of ``exc``'s traceback that is either the SDK's or the
    service's own is the service's (frames of the standard library or requests act on behalf
    of whichever called them), or is one of the SDK's argument checks."""
    ours = True
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename.startswith(_SDK_DIR):
            ours = code.co_name in _SDK_ARGUMENT_CHECKS
        elif code.co_filename.startswith(_OUR_DIR):
            ours = True
        tb = tb.tb_next
    return ours


# Validation codes that mean "the payment method cannot be used": the customer must supply
# another one. 91508 no payment method, 9156x nonce unknown/consumed/locked/not accepted,
# 91518 unknown vaulted token, 8171x card number invalid (Braintree's error code reference).
_PAYMENT_METHOD_CODES = frozenset(
    {
        "91508",
        "91518",
        "91564",
        "91565",
        "91566",
        "91567",
        "91569",
        "81714",
        "81715",
        "81716",
        "81717",
    }
)
API_REQUEST_KEY_REUSED = "915232"
API_REQUEST_KEY_IN_FLIGHT = "915233"
CUSTOMER_ID_IN_USE = "91609"
CANNOT_SUBMIT = "91507"  # submit_for_settlement of a sale that is not authorized


def _translate(operation: str, exc: Exception) -> GatewayError | None:
    """The service's error for an exception raised during a gateway call, None if it is not
    one we know (a bug: let it propagate unchanged)."""
    if isinstance(exc, GatewayError):
        return exc
    what = f"braintree {operation} failed: {type(exc).__name__}"
    if isinstance(exc, NotFoundError):
        return GatewayNotFound(f"{what}: {exc}")
    if isinstance(exc, _MISCONFIGURED):
        return GatewayMisconfigured(what)
    if isinstance(exc, _UNAVAILABLE):
        return GatewayUnavailable(what)
    if isinstance(exc, UnexpectedError):
        # Any other HTTP status ("Unexpected HTTP_RESPONSE 502" from a load balancer; the
        # 4xx that mean "wrong request" were raised as GatewayRequestRejected by the HTTP
        # strategy) or transport failure: the gateway may or may not have acted.
        return GatewayUnavailable(f"{what}: {exc}")
    if isinstance(exc, BraintreeError):
        # InvalidSignature/InvalidChallenge (webhooks), TestOperationPerformedInProduction:
        # a programming or configuration mistake, never fixed by retrying.
        return GatewayMisconfigured(what)
    if isinstance(exc, _BUG_SHAPED) and _raised_by_our_code(exc):
        return GatewayAdapterBug(f"{what}: a bug in the gateway adapter")
    if isinstance(exc, _UNPARSEABLE):
        return GatewayUnavailable(
            f"braintree {operation}: malformed response ({type(exc).__name__})"
        )
    return None


# --- conversions ------------------------------------------------------------------------------
def _text(value: Any) -> str | None:
    """The SDK gives "" or None for absent fields; the service uses None."""
    if value is None or value == "":
        return None
    return str(value)


def _money(amount: Any, currency: str) -> Money:
    try:
        places = minor_units(currency)
    except UnsupportedCurrency:
        raise GatewayMisconfigured(
            f"gateway transaction in unsupported currency {currency!r}"
        ) from None
    minor = Decimal(amount).scaleb(places)
    if minor != minor.to_integral_value():
        # e.g. a KWD merchant account (3 places) where the service expected USD.
        raise GatewayMisconfigured(f"gateway amount {amount} has more than {places} places")
    return Money(int(minor), currency)


def _attr(obj: Any, name: str) -> str | None:
    return _text(getattr(obj, name, None))


def _required(obj: Any, name: str) -> Any:
    """A field the gateway's answer must carry. Read here rather than as ``obj.name``: a
    missing one is a malformed answer (GatewayUnavailable, retried), not an AttributeError in
    our code, which would be a bug."""
    value = getattr(obj, name, None)
    if value is None or value == "":
        raise GatewayUnavailable(f"malformed gateway answer: {type(obj).__name__} without {name}")
    return value


# payment_instrument_type → where braintree.Transaction puts that instrument's details.
_TRANSACTION_DETAILS = {
    "credit_card": "credit_card_details",
    "apple_pay_card": "apple_pay_details",
    "android_pay_card": "android_pay_card_details",
    "paypal_account": "paypal_details",
    "venmo_account": "venmo_account_details",
    "sepa_debit_account": "sepa_direct_debit_account_details",
    "us_bank_account": "us_bank_account",
}
# The SDK's payment method classes (payment_method.create/find) → payment_instrument_type.
_PAYMENT_METHOD_TYPES: tuple[tuple[type[Any], str], ...] = (
    (braintree.CreditCard, "credit_card"),
    (braintree.ApplePayCard, "apple_pay_card"),
    (braintree.AndroidPayCard, "android_pay_card"),
    (braintree.PayPalAccount, "paypal_account"),
    (braintree.VenmoAccount, "venmo_account"),
    (braintree.SepaDirectDebitAccount, "sepa_debit_account"),
    (braintree.UsBankAccount, "us_bank_account"),
)
_WALLETS = {
    "apple_pay_card": "apple_pay",
    "android_pay_card": "google_pay",
    "paypal_account": "paypal",
    "venmo_account": "venmo",
}
_APPLE_PAY_PREFIX = "Apple Pay - "  # braintree.ApplePayCard.CardType: "Apple Pay - Visa"


def _transaction_instrument(tx: Any) -> InstrumentDetails | None:
    instrument_type = _attr(tx, "payment_instrument_type")
    if instrument_type is None:
        return None
    details = getattr(tx, _TRANSACTION_DETAILS.get(instrument_type, ""), None)
    return _fitted(_instrument(instrument_type, details))


def _payment_method_type(method: Any) -> str:
    """The payment_instrument_type of a vaulted payment method (its class name if unknown)."""
    for cls, instrument_type in _PAYMENT_METHOD_TYPES:
        if isinstance(method, cls):
            return instrument_type
    return type(method).__name__


def _payment_method_instrument(method: Any) -> InstrumentDetails:
    instrument_type = _payment_method_type(method)
    if instrument_type not in _TRANSACTION_DETAILS:  # a class this module does not know
        return _fitted(InstrumentDetails(instrument_type=instrument_type))
    return _fitted(_instrument(instrument_type, method))


def _fitted(instrument: InstrumentDetails) -> InstrumentDetails:
    """The instrument cut to the columns that show it (a PayPal display holds the payer's
    e-mail address, which may be up to 254 characters)."""
    return InstrumentDetails(
        instrument_type=instrument.instrument_type[: columns.INSTRUMENT_TYPE],
        brand=cut(instrument.brand, columns.BRAND),
        last4=cut(instrument.last4, columns.LAST4),
        expiration=cut(instrument.expiration, columns.EXPIRATION),
        wallet=cut(instrument.wallet, columns.WALLET),
        display=cut(instrument.display, columns.INSTRUMENT_DISPLAY),
    )


def _instrument(instrument_type: str, details: Any) -> InstrumentDetails:
    """What may be shown of an instrument, from the SDK's object for it (a transaction's
    details or a vaulted payment method: they share field names, except PayPal's email)."""
    wallet = _WALLETS.get(instrument_type)
    if details is None:
        return InstrumentDetails(instrument_type=instrument_type, wallet=wallet)
    if instrument_type in ("credit_card", "apple_pay_card", "android_pay_card"):
        if instrument_type == "android_pay_card":
            # The customer knows the card behind the Google Pay virtual card.
            brand = _attr(details, "source_card_type") or _attr(details, "virtual_card_type")
            last4 = _attr(details, "source_card_last_4") or _attr(details, "virtual_card_last_4")
        else:
            brand = _attr(details, "card_type")
            last4 = _attr(details, "last_4")
        if brand is not None and brand.startswith(_APPLE_PAY_PREFIX):
            brand = brand.removeprefix(_APPLE_PAY_PREFIX)
        card = _card_display(brand, last4)
        display = {
            "apple_pay_card": f"Apple Pay ({card})",
            "android_pay_card": f"Google Pay ({card})",
        }.get(instrument_type, card)
        return InstrumentDetails(
            instrument_type=instrument_type,
            brand=brand,
            last4=last4,
            expiration=_expiration(details),
            wallet=wallet,
            display=display,
        )
    if instrument_type == "paypal_account":
        email = _attr(details, "payer_email") or _attr(details, "email")
        return InstrumentDetails(
            instrument_type=instrument_type,
            wallet=wallet,
            display=f"PayPal ({email})" if email else "PayPal",
        )
    if instrument_type == "venmo_account":
        username = _attr(details, "username")
        return InstrumentDetails(
            instrument_type=instrument_type,
            wallet=wallet,
            display=f"Venmo (@{username})" if username else "Venmo",
        )
    last4 = _attr(details, "last_4")
    if instrument_type == "sepa_debit_account":
        return InstrumentDetails(
            instrument_type=instrument_type,
            last4=last4,
            display=f"SEPA direct debit ending {last4}" if last4 else "SEPA direct debit",
        )
    if instrument_type == "us_bank_account":
        bank = _attr(details, "bank_name")
        display = f"Bank account ending {last4}" if last4 else "Bank account"
        return InstrumentDetails(
            instrument_type=instrument_type,
            brand=bank,
            last4=last4,
            display=f"{display} ({bank})" if bank else display,
        )
    return InstrumentDetails(instrument_type=instrument_type, wallet=wallet)


def _card_display(brand: str | None, last4: str | None) -> str:
    if last4 is None:
        return brand or "Card"
    return f"{brand or 'Card'} ending {last4}"


def _expiration(details: Any) -> str | None:
    month, year = _attr(details, "expiration_month"), _attr(details, "expiration_year")
    if month is None or year is None or not month.isdigit():
        return None
    return f"{int(month):02d}/{year}"


def _first_error(result: Any) -> tuple[str | None, str | None]:
    """(code, message) of the first validation error of an SDK error result."""
    errors = result.errors.deep_errors
    if not errors:
        return None, _text(getattr(result, "message", None))
    first = errors[0]
    return str(first.code), _text(getattr(result, "message", None)) or _text(first.message)


# --- the adapter ------------------------------------------------------------------------------
class BraintreeGateway:
    """PaymentGateway over a configured ``braintree.BraintreeGateway``.

    ``merchant_account_ids`` maps a currency to the Braintree merchant account that settles
    it; a Braintree amount has no currency of its own, the account decides. Sales in other
    currencies go to the merchant's default account. ``default_currency`` is only used to read
    a transaction that carries no currency_iso_code (Braintree always sends one).
    """

    def __init__(
        self,
        gateway: Any,
        *,
        merchant_account_ids: Mapping[str, str] | None = None,
        default_currency: str = "USD",
    ) -> None:
        self._sdk = gateway
        self._merchant_account_ids = dict(merchant_account_ids or {})
        self._default_currency = default_currency

    # --- PaymentGateway ---------------------------------------------------------------------
    def sale(
        self,
        *,
        request_key: str,
        order_id: str,
        amount: Money,
        payment_method_nonce: str | None = None,
        payment_method_token: str | None = None,
        submit_for_settlement: bool = True,
    ) -> SaleOutcome:
        """Authorize and submit for settlement in one call, paying with a single-use nonce or
        a vaulted payment method's token (exactly one; ValueError otherwise). Idempotent per
        ``request_key``. A bank transfer comes back ``settlement_pending`` (approved).

        With ``submit_for_settlement`` False the sale is only authorized (status
        "authorized", approved): ``submit_for_settlement`` captures it later and ``void``
        releases it. Bank transfers are captured whatever the flag says."""
        if bool(payment_method_nonce) == bool(payment_method_token):
            raise ValueError("sale needs exactly one of payment_method_nonce, payment_method_token")
        params: dict[str, Any] = {
            "amount": str(amount),
            "order_id": order_id,
            "options": {"submit_for_settlement": submit_for_settlement},
            "api_request_key": request_key,
        }
        if payment_method_nonce:
            params["payment_method_nonce"] = payment_method_nonce
        else:
            params["payment_method_token"] = payment_method_token
        if merchant_account_id := self._merchant_account_ids.get(amount.currency):
            params["merchant_account_id"] = merchant_account_id
        # Nonces and tokens pay: they never reach a log line, only which of the two was used.
        context = {
            "order_id": order_id,
            "request_key": request_key,
            "amount": str(amount),
            "currency": amount.currency,
            "paid_with": "nonce" if payment_method_nonce else "token",
            "submit_for_settlement": submit_for_settlement,
        }
        outcome = self._call(
            "sale",
            lambda: self._sale_outcome(self._sdk.transaction.sale(params), amount.currency),
            context,
        )
        tx = outcome.transaction
        if tx is not None and tx.amount.currency != amount.currency:
            log.error(
                "gateway_currency_mismatch",
                **context,
                transaction_id=tx.transaction_id,
                gateway_currency=tx.amount.currency,
            )
        log.info(
            "gateway_sale",
            **context,
            approved=outcome.approved,
            transaction_id=tx.transaction_id if tx else None,
            status=tx.status if tx else None,
            instrument_type=tx.instrument.instrument_type if tx and tx.instrument else None,
            failure_reason=outcome.failure_reason,
            decline_code=outcome.decline_code,
        )
        return outcome

    def find_sales_by_order_id(self, order_id: str) -> list[GatewayTransaction]:
        """The sales carrying ``order_id`` (any status, refunds excluded), oldest first, with
        their instrument details.

        The way to learn whether a charge happened after an ambiguous failure before charging
        again under a new request key (a retry under the same key needs no lookup).
        """
        return self._call(
            "search",
            lambda: [
                self._transaction(tx, self._default_currency)
                for tx in self._sdk.transaction.search(
                    braintree.TransactionSearch.order_id == order_id,
                    braintree.TransactionSearch.type == "sale",
                ).items
                # The search already asks for sales; a credit must never pass for a charge.
                if _attr(tx, "type") == "sale"
            ],
            {"order_id": order_id},
        )

    def vault(
        self, *, customer_id: str, payment_method_nonce: str, token: str | None = None
    ) -> VaultOutcome:
        """Store the nonce's payment method for ``customer_id``, creating the customer (with
        that id) if Braintree does not know it, under ``token`` when given (Braintree's own
        otherwise). Cards are verified first (verify_card): one that fails verification is
        refused with the processor's code ("2000").

        Not idempotent (payment_method.create takes no request key): after GatewayUnavailable
        a retry with a single-use nonce may answer 93107 (nonce consumed) although the first
        attempt vaulted it. Vault under a token of our choosing and look it up
        (``find_payment_method``) before vaulting again; the same token is also what deletes
        a method vaulted too late.
        """
        context = {"customer_id": customer_id}
        outcome = self._call(
            "vault", lambda: self._vault(customer_id, payment_method_nonce, token), context
        )
        # A refusal is stored on the payment method's row.
        outcome = replace(
            outcome,
            error_code=cut(outcome.error_code, columns.VAULT_FAILURE_CODE),
            error_message=cut(outcome.error_message, columns.FAILURE_MESSAGE),
        )
        method = outcome.method
        log.info(
            "gateway_vault",
            **context,
            succeeded=outcome.succeeded,
            instrument_type=method.instrument.instrument_type if method else None,
            error_code=outcome.error_code,
        )
        return outcome

    def find_payment_method(self, token: str) -> VaultedPaymentMethod | None:
        """The vaulted payment method ``token`` (any customer's), None if unknown."""

        def find() -> VaultedPaymentMethod | None:
            try:
                method = self._sdk.payment_method.find(token)
            except NotFoundError:
                return None
            return VaultedPaymentMethod(
                token=str(_required(method, "token")),
                customer_id=str(_required(method, "customer_id")),
                instrument=_payment_method_instrument(method),
            )

        return self._call("find_payment_method", find, {})

    def describe_payment_method(
        self,
        *,
        payment_method_nonce: str | None = None,
        payment_method_token: str | None = None,
    ) -> PaymentMethodProfile:
        """The profile (bin, last 4, brand, issuing country, fingerprint) of a single-use
        nonce's or a vaulted token's payment method: exactly one of the two, ValueError
        otherwise. A read: the nonce stays usable for the sale that follows.

        Raises PaymentMethodNotFound when the gateway knows no such nonce (unknown, expired)
        or token, or the nonce was already used; the other gateway errors as every call does
        (GatewayUnavailable is safe to retry: nothing is written).
        """
        if bool(payment_method_nonce) == bool(payment_method_token):
            raise ValueError(
                "describe_payment_method needs exactly one of payment_method_nonce, "
                "payment_method_token"
            )
        if payment_method_nonce:
            nonce = payment_method_nonce
            profile = self._call(
                "describe_payment_method",
                lambda: self._describe_nonce(nonce),
                {"described": "nonce"},
            )
        else:
            token = str(payment_method_token)
            profile = self._call(
                "describe_payment_method",
                lambda: self._describe_token(token),
                {"described": "token"},
            )
        # Nonces and tokens never reach a log line; the profile holds neither.
        log.info(
            "gateway_payment_method_described",
            described="nonce" if payment_method_nonce else "token",
            instrument_type=profile.instrument_type,
            brand=profile.brand,
            country_of_issuance=profile.country_of_issuance,
            fingerprint=profile.fingerprint,
        )
        return profile

    def delete_payment_method(self, token: str) -> None:
        """Remove a vaulted payment method. Idempotent: an unknown token is already deleted."""

        def delete() -> None:
            try:
                self._sdk.payment_method.delete(token)
            except NotFoundError:
                log.info("gateway_payment_method_already_deleted")

        self._call("delete_payment_method", delete, {})

    def parse_webhook(self, signature: str, payload: str) -> WebhookEvent:
        """Verify (HMAC-SHA1 with the private key, via the SDK) and decode a webhook's
        ``bt_signature``/``bt_payload``. Raises InvalidWebhook if the signature does not
        verify for this public key or the payload cannot be decoded. No network call."""
        try:
            notification = self._sdk.webhook_notification.parse(signature, payload)
        except (InvalidSignatureError, InvalidChallengeError) as exc:
            log.warning("gateway_webhook_rejected", reason=str(exc))
            raise InvalidWebhook("webhook signature does not verify") from None
        except _UNPARSEABLE as exc:
            log.warning("gateway_webhook_rejected", reason=type(exc).__name__)
            raise InvalidWebhook("webhook payload cannot be decoded") from None
        transaction = getattr(notification, "transaction", None)
        timestamp = getattr(notification, "timestamp", None)
        return WebhookEvent(
            kind=str(notification.kind)[: columns.WEBHOOK_KIND],
            transaction_id=_attr(transaction, "id") if transaction is not None else None,
            transaction_status=(
                cut(_attr(transaction, "status"), columns.GATEWAY_STATUS)
                if transaction is not None
                else None
            ),
            timestamp=(
                timestamp.isoformat() if isinstance(timestamp, datetime) else _text(timestamp)
            ),
        )

    def find(self, transaction_id: str) -> GatewayTransaction:
        return self._call(
            "find",
            lambda: self._transaction(
                self._sdk.transaction.find(transaction_id), self._default_currency
            ),
            {"transaction_id": transaction_id},
        )

    def refund(
        self, *, request_key: str, transaction_id: str, amount: Money | None
    ) -> ReversalOutcome:
        """Refund a settled/settling sale, fully (``amount`` None: what remains) or partly.
        An unsettled sale is refused with 91506: void it instead."""
        options: dict[str, Any] = {"api_request_key": request_key}
        if amount is not None:
            options["amount"] = str(amount)
        currency = amount.currency if amount is not None else self._default_currency
        context = {
            "transaction_id": transaction_id,
            "request_key": request_key,
            "amount": str(amount) if amount is not None else "full",
        }
        outcome = self._call(
            "refund",
            lambda: self._refund_outcome(
                self._sdk.transaction.refund(transaction_id, options), currency
            ),
            context,
        )
        self._log_refund_outcome("gateway_refund", outcome, context)
        return outcome

    def void(self, *, request_key: str, transaction_id: str) -> ReversalOutcome:
        """Cancel an authorized or submitted_for_settlement sale; 91504 once it settles."""
        context = {"transaction_id": transaction_id, "request_key": request_key}
        outcome = self._call(
            "void",
            lambda: self._refund_outcome(
                self._sdk.transaction.void(transaction_id, {"api_request_key": request_key}),
                self._default_currency,
            ),
            context,
        )
        self._log_refund_outcome("gateway_void", outcome, context)
        return outcome

    def submit_for_settlement(self, *, request_key: str, transaction_id: str) -> SaleOutcome:
        """Capture an authorized sale (``sale(..., submit_for_settlement=False)``) in full:
        approved with the sale, now submitted_for_settlement.

        Idempotent per ``request_key``: the same key again answers the original success even
        though the sale is no longer authorized. A sale that is not authorized (already
        submitted under another key, voided, declined) is refused without a transaction:
        decline_code 91507, failure_reason "not_authorized"."""
        context = {"transaction_id": transaction_id, "request_key": request_key}
        outcome = self._call(
            "submit_for_settlement",
            lambda: self._capture_outcome(
                self._sdk.transaction.submit_for_settlement(
                    transaction_id, None, {"api_request_key": request_key}
                )
            ),
            context,
        )
        tx = outcome.transaction
        log.info(
            "gateway_submit_for_settlement",
            **context,
            approved=outcome.approved,
            status=tx.status if tx else None,
            decline_code=outcome.decline_code,
        )
        return outcome

    # --- internals --------------------------------------------------------------------------
    def _describe_nonce(self, nonce: str) -> PaymentMethodProfile:
        try:
            found = self._sdk.payment_method_nonce.find(nonce)
        except NotFoundError:
            raise PaymentMethodNotFound(
                "the gateway knows no such payment method nonce (unknown or expired)"
            ) from None
        # Braintree still finds a used nonce, marked consumed: no sale can use it any more.
        if getattr(found, "consumed", False) is True:
            raise PaymentMethodNotFound("the payment method nonce was already used")
        return nonce_profile(found, nonce)

    def _describe_token(self, token: str) -> PaymentMethodProfile:
        try:
            method = self._sdk.payment_method.find(token)
        except NotFoundError:
            raise PaymentMethodNotFound("the gateway knows no such payment method token") from None
        return vaulted_profile(_payment_method_type(method), method, token)

    def _call(self, operation: str, call: Callable[[], T], context: Mapping[str, Any]) -> T:
        """Run an SDK call and the parsing of its result, translating what it raises."""
        try:
            return call()
        except Exception as exc:
            error = _translate(operation, exc)
            if error is None:
                raise
            if isinstance(error, GatewayAdapterBug):
                # Loud, with the traceback (masked like every log line): someone must fix it.
                log.error("gateway_adapter_bug", operation=operation, **context, exc_info=exc)
                raise error from exc
            log.warning(
                "gateway_call_failed",
                operation=operation,
                **context,
                error=error.code,
                cause=type(exc).__name__,
                http_status=error.status if isinstance(error, GatewayRequestRejected) else None,
            )
            if error is exc:
                raise
            raise error from exc

    def _transaction(self, tx: Any, fallback_currency: str) -> GatewayTransaction:
        currency = _text(getattr(tx, "currency_iso_code", None)) or fallback_currency
        return GatewayTransaction(
            transaction_id=str(_required(tx, "id")),
            type=str(_required(tx, "type")),
            status=str(_required(tx, "status"))[: columns.GATEWAY_STATUS],
            amount=_money(_required(tx, "amount"), currency),
            order_id=_text(getattr(tx, "order_id", None)),
            processor_response_code=cut(
                _attr(tx, "processor_response_code"), columns.PROCESSOR_RESPONSE_CODE
            ),
            # The decline message when the processor refuses.
            processor_response_text=cut(
                _attr(tx, "processor_response_text"), columns.FAILURE_MESSAGE
            ),
            refunded_transaction_id=_text(getattr(tx, "refunded_transaction_id", None)),
            instrument=_transaction_instrument(tx),
        )

    def _vault(
        self, customer_id: str, payment_method_nonce: str, token: str | None
    ) -> VaultOutcome:
        refused = self._ensure_customer(customer_id)
        if refused is not None:
            return refused
        params: dict[str, Any] = {
            "customer_id": customer_id,
            "payment_method_nonce": payment_method_nonce,
            "options": {"verify_card": True},
        }
        if token is not None:
            params["token"] = token
        result = self._sdk.payment_method.create(params)
        if result is None:
            raise GatewayUnavailable("braintree payment_method.create: empty response")
        if result.is_success:
            method = result.payment_method
            return VaultOutcome(
                succeeded=True,
                method=VaultedPaymentMethod(
                    token=str(_required(method, "token")),
                    customer_id=_attr(method, "customer_id") or customer_id,
                    instrument=_payment_method_instrument(method),
                ),
            )
        verification = getattr(result, "credit_card_verification", None)
        if verification is not None:
            # The card failed verification: Braintree answers with the verification and no
            # validation errors; its processor code says why (2000 Do Not Honor...).
            return VaultOutcome(
                succeeded=False,
                error_code=(
                    _attr(verification, "processor_response_code")
                    or _attr(verification, "gateway_rejection_reason")
                    or _attr(verification, "status")
                ),
                error_message=_attr(verification, "processor_response_text")
                or _text(result.message),
            )
        code, message = _first_error(result)
        return VaultOutcome(succeeded=False, error_code=code, error_message=message)

    def _ensure_customer(self, customer_id: str) -> VaultOutcome | None:
        """None once the customer exists (found or created); the refusal otherwise."""
        try:
            self._sdk.customer.find(customer_id)
            return None
        except NotFoundError:
            pass  # a new customer: create it under the service's id
        created = self._sdk.customer.create({"id": customer_id})
        if created is None:
            raise GatewayUnavailable("braintree customer.create: response without a customer")
        if created.is_success:
            return None
        code, message = _first_error(created)
        # 91609: a concurrent vault created the customer since find: go on.
        if code == CUSTOMER_ID_IN_USE:
            return None
        return VaultOutcome(succeeded=False, error_code=code, error_message=message)

    def _sale_outcome(self, result: Any, currency: str) -> SaleOutcome:
        if result is None:
            # A 2xx answer with neither <transaction> nor <api-error-response>.
            raise GatewayUnavailable("braintree sale: response without a transaction")
        if result.is_success:
            return SaleOutcome(
                approved=True, transaction=self._transaction(result.transaction, currency)
            )
        if result.transaction is not None:
            tx = self._transaction(result.transaction, currency)
            if tx.status == "gateway_rejected":
                # The gateway's own refusal (fraud, avs, application_incomplete...): no
                # processor saw the sale, so it has no processor response code. The reason
                # is told in the message ("Gateway Rejected: fraud", Braintree's wording).
                reason = _attr(result.transaction, "gateway_rejection_reason")
                told = _text(result.message) or f"Gateway Rejected: {reason or 'unknown'}"
                return SaleOutcome(
                    approved=False,
                    transaction=tx,
                    decline_code=reason,
                    decline_message=told[: columns.FAILURE_MESSAGE],
                    failure_reason="gateway_rejected",
                )
            # processor_declined (2000-2999), failed (3000: processor network trouble), or a
            # status we do not expect: the status itself is the stable reason.
            return SaleOutcome(
                approved=False,
                transaction=tx,
                decline_code=tx.processor_response_code,
                decline_message=tx.processor_response_text
                or cut(_text(result.message), columns.FAILURE_MESSAGE),
                failure_reason=tx.status,
            )
        code, message = _first_error(result)
        if code == API_REQUEST_KEY_IN_FLIGHT:
            raise GatewayUnavailable("braintree sale: the same request key is still in flight")
        return SaleOutcome(
            approved=False,
            transaction=None,
            # Stored as the payment's response code: no transaction, no processor code.
            decline_code=cut(code, columns.PROCESSOR_RESPONSE_CODE),
            decline_message=cut(message, columns.FAILURE_MESSAGE),
            failure_reason=_validation_failure_reason(code),
        )

    def _capture_outcome(self, result: Any) -> SaleOutcome:
        # A capture answers like a void: the sale, or validation errors (91507...).
        answer = self._refund_outcome(result, self._default_currency)
        if answer.succeeded:
            return SaleOutcome(approved=True, transaction=answer.transaction)
        code = answer.error_code
        return SaleOutcome(
            approved=False,
            transaction=answer.transaction,
            decline_code=cut(code, columns.PROCESSOR_RESPONSE_CODE),
            decline_message=answer.error_message,
            failure_reason=(
                "not_authorized" if code == CANNOT_SUBMIT else _validation_failure_reason(code)
            ),
        )

    def _refund_outcome(self, result: Any, currency: str) -> ReversalOutcome:
        if result is None:
            raise GatewayUnavailable("braintree refund/void/submit: response without a transaction")
        if result.is_success:
            return ReversalOutcome(
                succeeded=True, transaction=self._transaction(result.transaction, currency)
            )
        if result.transaction is not None:
            # The gateway created a refund but the processor refused it.
            tx = self._transaction(result.transaction, currency)
            return ReversalOutcome(
                succeeded=False,
                transaction=tx,
                error_code=tx.processor_response_code,
                error_message=tx.processor_response_text
                or cut(_text(result.message), columns.FAILURE_MESSAGE),
            )
        code, message = _first_error(result)
        if code == API_REQUEST_KEY_IN_FLIGHT:
            raise GatewayUnavailable("braintree: the same request key is still in flight")
        return ReversalOutcome(
            succeeded=False,
            transaction=None,
            error_code=code,
            error_message=cut(message, columns.FAILURE_MESSAGE),
        )

    @staticmethod
    def _log_refund_outcome(
        event: str, outcome: ReversalOutcome, context: Mapping[str, Any]
    ) -> None:
        tx = outcome.transaction
        log.info(
            event,
            **context,
            succeeded=outcome.succeeded,
            result_transaction_id=tx.transaction_id if tx else None,
            status=tx.status if tx else None,
            error_code=outcome.error_code,
        )


def _validation_failure_reason(code: str | None) -> str:
    if code in _PAYMENT_METHOD_CODES:
        return "invalid_payment_method"
    if code == API_REQUEST_KEY_REUSED:
        return "request_key_reused"
    return "validation_error"


# --- construction -----------------------------------------------------------------------------
# 4xx statuses the SDK already raises a meaningful exception for (authentication, permission,
# not found, upgrade: _MISCONFIGURED/NotFound; request timeout, rate limit: _UNAVAILABLE).
_SDK_CLASSIFIED_4XX = frozenset({401, 403, 404, 408, 426, 429})
UNPROCESSABLE = 422  # Braintree's validation errors and declines, parsed by the SDK


def _is_error_document(body: str) -> bool:
    """True if ``body`` is the ``<api-error-response>`` the SDK turns into an error result."""
    try:
        return "api_error_response" in XmlUtil.dict_from_xml(body)
    except _UNPARSEABLE:
        return False


def rejects_request(status: int, body: str) -> bool:
    """True if the gateway's answer says the request itself is wrong: a 4xx the SDK has no
    exception of its own for, or a 422 that is not Braintree's error document (the SDK would
    read it as an empty or malformed answer, an outage). Such a request is refused again
    however often it is repeated."""
    if not 400 <= status < 500 or status in _SDK_CLASSIFIED_4XX:
        return False
    return status != UNPROCESSABLE or not _is_error_document(body)


class _ClassifyingHttp(Http):  # type: ignore[misc]  # braintree is untyped
    """The SDK's HTTP strategy, plus one decision the SDK does not make: a 4xx that means
    "your request is wrong" raises GatewayRequestRejected (with the status) instead of the
    SDK's ``UnexpectedError("Unexpected HTTP_RESPONSE 400")``, which looks like a proxy's 502
    and would be retried for ever. The SDK checks the status after ``http_do`` returns, so
    ``http_do`` is where the status can still be read without parsing exception messages."""

    def http_do(
        self, http_verb: str, path: str, headers: dict[str, Any], request_body: Any
    ) -> list[Any]:
        status, body = self._send(http_verb, path, headers, request_body)
        if rejects_request(status, body):
            # The body is not quoted: a gateway may echo the refused field (a nonce, a token).
            raise GatewayRequestRejected(
                f"the gateway refused the request as malformed (HTTP {status})", status=status
            )
        return [status, body]

    def _send(
        self, http_verb: str, path: str, headers: dict[str, Any], request_body: Any
    ) -> tuple[int, str]:
        status, body = super().http_do(http_verb, path, headers, request_body)
        return int(status), str(body)

    def handle_exception(self, exception: Exception) -> None:
        # With wrap_http_exceptions the SDK hands whatever http_do raised to this method,
        # whose base version turns anything unknown into UnexpectedError: let ours through.
        if isinstance(exception, GatewayRequestRejected):
            raise exception
        super().handle_exception(exception)


class _DirectHttp(_ClassifyingHttp):
    """HTTP for the local sandbox that ignores HTTP(S)_PROXY.

    The SDK copies the proxy variables from the environment into every session and ignores
    NO_PROXY, so with a proxy configured it would send 127.0.0.1 requests to the proxy.
    """

    def _send(
        self, http_verb: str, path: str, headers: dict[str, Any], request_body: Any
    ) -> tuple[int, str]:
        # The SDK's per-thread session (kept alive between calls), told not to read the
        # environment; proxies are then never applied.
        session: requests.Session = self._get_session()
        session.trust_env = False
        response = session.request(
            http_verb, path, headers=headers, data=request_body, timeout=self.config.timeout
        )
        return response.status_code, response.text


def build_braintree_gateway(
    settings: GatewaySettings, *, merchant_account_ids: Mapping[str, str] | None = None
) -> BraintreeGateway:
    """The adapter for ``settings``: the local sandbox (environment=local, plain HTTP on
    local_host:local_port) or Braintree's sandbox/production. Raises GatewayMisconfigured if
    the SDK refuses the configuration. Makes no network call."""
    # Every environment classifies 4xx answers (_ClassifyingHttp); only the local sandbox
    # also bypasses proxies.
    http_strategy: type[_ClassifyingHttp] = _ClassifyingHttp
    if settings.environment == "local":
        environment = braintree.Environment(
            "local",
            settings.local_host,
            str(settings.local_port),  # the SDK compares the port as a string ("443": https)
            "http://" + settings.local_host,
            False,
            None,
        )
        http_strategy = _DirectHttp
    elif settings.environment == "sandbox":
        environment = braintree.Environment.Sandbox
    else:
        environment = braintree.Environment.Production
    try:
        config = braintree.Configuration(
            environment=environment,
            merchant_id=settings.merchant_id,
            public_key=settings.public_key,
            private_key=settings.private_key.get_secret_value(),
            timeout=settings.timeout_seconds,
            # Transport failures as braintree exceptions (ConnectionError, ReadTimeoutError...)
            # rather than raw requests exceptions, so _translate sees one hierarchy.
            wrap_http_exceptions=True,
            http_strategy=http_strategy,
        )
    except BraintreeError as exc:
        raise GatewayMisconfigured(f"braintree configuration refused: {exc}") from None
    log.info(
        "gateway_configured",
        environment=settings.environment,
        merchant_id=settings.merchant_id,
        base_url=config.base_url(),
    )
    return BraintreeGateway(
        braintree.BraintreeGateway(config),
        merchant_account_ids=(
            settings.merchant_accounts if merchant_account_ids is None else merchant_account_ids
        ),
    )
