"""What the service needs from a payment gateway, independent of the braintree SDK.

Activities depend on the ``PaymentGateway`` protocol; ``payments.gateway.braintree_gateway``
implements it with the official SDK (the only module that imports ``braintree``).

Declines are results, not exceptions. Exceptions mean the call itself failed:
``GatewayUnavailable`` (outcome unknown, safe to retry with the same request key) or
``GatewayMisconfigured`` / ``GatewayNotFound`` (retrying cannot help). Describing a payment
method the gateway does not know (an unknown, expired or used nonce; a deleted token) raises
``PaymentMethodNotFound``, a ``GatewayNotFound``.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol

from payments.errors import GatewayNotFound
from payments.money import Money


class PaymentMethodNotFound(GatewayNotFound):
    """The gateway has no payment method behind this nonce or token: the nonce is unknown,
    expired (Braintree's live three hours) or already used, or the token was deleted. The
    caller treats it as "no profile"; retrying the same reference cannot help. (Kept here
    rather than in ``payments.errors`` because only the gateway's describe call raises it.)"""

    code = "payment_method_not_found"
    # The reference came from the client (a nonce from its checkout): its mistake, not an
    # outage of ours, should it ever reach the API.
    http_status = HTTPStatus.UNPROCESSABLE_ENTITY


@dataclass(frozen=True, slots=True)
class InstrumentDetails:
    """What a user would recognise of the means of payment; never a full number."""

    # Braintree's payment_instrument_type: credit_card, apple_pay_card, android_pay_card,
    # paypal_account, venmo_account, sepa_debit_account, us_bank_account.
    instrument_type: str
    brand: str | None = None  # "Visa", "MasterCard", ...; the bank's name for bank accounts
    last4: str | None = None
    expiration: str | None = None  # "12/2030"
    wallet: str | None = None  # "apple_pay", "google_pay", "paypal", "venmo"
    # One line for people: "Visa ending 1881", "Apple Pay (Visa ending 1881)", "PayPal".
    display: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentMethodProfile:
    """What fraud rules may know of a payment method before it is charged; never a number.

    ``fingerprint`` names the underlying instrument, whichever reference it came by: the same
    card as a single-use nonce or as a vaulted token gives the same fingerprint. It is the
    first 32 hex digits of a SHA-256 over ``instrument_type|bin|last4|expiration`` for cards
    (card wallets too), over ``instrument_type|identity`` for PayPal (the payer's e-mail),
    Venmo (the user id) and bank accounts (routing number and last 4, or the SEPA mandate's
    reference). A reference whose instrument has no identity the gateway shows gets a
    fingerprint of its own (no false matches with other instruments).
    """

    instrument_type: str  # Braintree's: credit_card, apple_pay_card, paypal_account, ...
    bin: str | None  # the first 6 digits of a card (of the wallet's card); None otherwise
    last4: str | None  # of a card or a bank account
    brand: str | None  # a card's network ("Visa", "MasterCard"...); None for other kinds
    # ISO 3166 alpha-3 as Braintree gives it ("USA", "CAN"); None when unknown (Braintree
    # says "Unknown" for most sandbox cards) or not a card.
    country_of_issuance: str | None
    fingerprint: str


@dataclass(frozen=True, slots=True)
class GatewayTransaction:
    """A gateway transaction as the service sees it (a sale, a refund, or a voided sale)."""

    transaction_id: str
    type: str  # "sale" | "credit"
    status: str  # braintree status: authorized, submitted_for_settlement, settled, voided, ...
    amount: Money
    order_id: str | None
    processor_response_code: str | None
    processor_response_text: str | None
    # A refund's parent sale, if this is a credit.
    refunded_transaction_id: str | None = None
    instrument: InstrumentDetails | None = None


@dataclass(frozen=True, slots=True)
class SaleOutcome:
    approved: bool
    # Present when the gateway created a transaction (approved, processor-declined,
    # gateway-rejected); absent for validation errors (bad nonce, ...).
    transaction: GatewayTransaction | None
    # Why it was refused: processor response code ("2000"), gateway rejection reason ("fraud"),
    # or validation error code ("91565"). None when approved.
    decline_code: str | None = None
    decline_message: str | None = None
    # Stable machine-readable reason stored as the payment's failure_reason
    # ("processor_declined", "gateway_rejected", "failed", "invalid_payment_method", ...).
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ReversalOutcome:
    succeeded: bool
    # The credit transaction of a refund, or the original sale after a void.
    transaction: GatewayTransaction | None
    # Braintree validation code when refused: 91506 (not settled: void instead),
    # 91521 (amount too large), 91512 (already refunded), 91504 (cannot void).
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class VaultedPaymentMethod:
    """A payment method stored at the gateway: ``token`` charges it again (a secret-ish
    reference the service keeps encrypted), ``instrument`` is what may be shown."""

    token: str
    customer_id: str
    instrument: InstrumentDetails


@dataclass(frozen=True, slots=True)
class VaultOutcome:
    succeeded: bool
    method: VaultedPaymentMethod | None = None
    error_code: str | None = None  # e.g. 91565 unknown nonce, 81714 invalid card number
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified gateway webhook (braintree ``webhook_notification.parse``)."""

    kind: str  # "transaction_settled", "transaction_settlement_declined", "check", ...
    transaction_id: str | None
    transaction_status: str | None
    timestamp: str | None = None


class PaymentGateway(Protocol):
    """Synchronous (the braintree SDK is); activities call it from a thread pool.

    Every write carries ``request_key``, sent as braintree's ``api_request_key``: the same key
    for the same business operation, so a retry after an unknown outcome never charges twice.
    """

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
        """Exactly one of nonce (single use, from the client SDK) or token (vaulted). With
        ``submit_for_settlement`` False the sale is only authorized (status "authorized"):
        ``submit_for_settlement`` captures it later, ``void`` releases it."""
        ...

    def describe_payment_method(
        self,
        *,
        payment_method_nonce: str | None = None,
        payment_method_token: str | None = None,
    ) -> PaymentMethodProfile:
        """The profile of a nonce's or a vaulted token's payment method (exactly one;
        ValueError otherwise), read without charging or using up the nonce. Raises
        PaymentMethodNotFound for an unknown, expired or used nonce, or an unknown token."""
        ...

    def submit_for_settlement(self, *, request_key: str, transaction_id: str) -> SaleOutcome:
        """Capture an authorized sale in full: approved with the sale (now
        submitted_for_settlement), or refused without a transaction, ``decline_code`` 91507
        (failure_reason "not_authorized") unless the sale is authorized. Idempotent per
        ``request_key``."""
        ...

    def find_sales_by_order_id(self, order_id: str) -> list[GatewayTransaction]:
        """Every sale the gateway holds for ``order_id`` (the look-up before charging again
        after an unknown outcome)."""
        ...

    def vault(
        self, *, customer_id: str, payment_method_nonce: str, token: str | None = None
    ) -> VaultOutcome:
        """Store the nonce's payment method for ``customer_id`` (created if missing), under
        ``token`` if given (else the gateway picks one)."""
        ...

    def find_payment_method(self, token: str) -> VaultedPaymentMethod | None:
        """The vaulted payment method ``token``, None if the gateway has none."""
        ...

    def delete_payment_method(self, token: str) -> None:
        """Idempotent: deleting an unknown token is not an error."""
        ...

    def parse_webhook(self, signature: str, payload: str) -> WebhookEvent:
        """Verify and decode a webhook; raises InvalidWebhook if the signature is wrong."""
        ...

    def find(self, transaction_id: str) -> GatewayTransaction: ...

    def refund(
        self, *, request_key: str, transaction_id: str, amount: Money | None
    ) -> ReversalOutcome: ...

    def void(self, *, request_key: str, transaction_id: str) -> ReversalOutcome: ...
