"""What the sandbox's objects look like in Braintree's XML (before ``xml_codec`` renders it).

The braintree SDK builds its result objects from these fields with ``setattr``: a field it
expects but does not find raises AttributeError, and a field whose name is one of its
read-only properties (``CreditCard.masked_number``, ``AndroidPayCard.last_4``...) raises too.
So every field here is deliberate; absent values are nil rather than missing.

Where the instrument goes depends on the document:

- in a transaction: ``credit_card``, ``apple_pay``, ``android_pay_card``, ``paypal``,
  ``venmo_account``, ``sepa_debit_account_detail`` or ``us_bank_account`` (the keys
  ``braintree.Transaction`` reads), next to ``payment_instrument_type``;
- as a vaulted payment method: the root ``credit_card``, ``apple_pay_card``,
  ``android_pay_card``, ``paypal_account``, ``venmo_account``, ``sepa_debit_account`` or
  ``us_bank_account`` (what ``braintree.payment_method_parser`` dispatches on), and the
  customer's lists of them (``credit_cards``, ``apple_pay_cards``...).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from devtools.sandbox.scenarios import Card, Instrument, InstrumentType
from devtools.sandbox.store import SandboxTransaction
from devtools.sandbox.vault import SandboxCustomer, VaultedMethod, Verification
from devtools.sandbox.xml_codec import XmlArray, XmlValue
from payments.money import MINOR_UNITS

_IMAGE_BASE = "https://assets.braintreegateway.com/payment_method_logo"
# Instrument type → (key inside a transaction, root of a vaulted payment method, customer list).
_KEYS: dict[InstrumentType, tuple[str, str, str]] = {
    "credit_card": ("credit_card", "credit_card", "credit_cards"),
    "apple_pay_card": ("apple_pay", "apple_pay_card", "apple_pay_cards"),
    "android_pay_card": ("android_pay_card", "android_pay_card", "android_pay_cards"),
    "paypal_account": ("paypal", "paypal_account", "paypal_accounts"),
    "venmo_account": ("venmo_account", "venmo_account", "venmo_accounts"),
    "sepa_debit_account": (
        "sepa_debit_account_detail",
        "sepa_debit_account",
        "sepa_debit_accounts",
    ),
    "us_bank_account": ("us_bank_account", "us_bank_account", "us_bank_accounts"),
}
_PAYPAL_TRANSACTION_ONLY = frozenset(
    {
        "payer_first_name",
        "payer_last_name",
        "payer_status",
        "payment_id",
        "authorization_id",
        "capture_id",
        "refund_id",
        "debug_id",
        "payee_id",
        "payee_email",
        "custom_field",
        "description",
        "seller_protection_status",
        "transaction_fee_amount",
        "transaction_fee_currency_iso_code",
    }
)
# The customer lists and the tag of their items.
CUSTOMER_LISTS: dict[str, str] = {lst: root for _, root, lst in _KEYS.values()}


def format_amount(amount: Any, currency: str) -> str:
    return f"{amount:.{MINOR_UNITS.get(currency, 2)}f}"


# --- transactions ------------------------------------------------------------------------------
def transaction_fields(tx: SandboxTransaction) -> dict[str, XmlValue]:
    """Every field braintree.Transaction's constructor and our adapter read, plus the usual
    neighbours."""
    detail_key = _KEYS[tx.instrument.type][0]
    return {
        "id": tx.id,
        "status": tx.status,
        "type": tx.type,
        "currency_iso_code": tx.currency,
        "amount": format_amount(tx.amount, tx.currency),
        "merchant_account_id": tx.merchant_account_id,
        "order_id": tx.order_id,
        "created_at": tx.created_at,
        "updated_at": tx.updated_at,
        "processor_response_code": tx.processor_response_code,
        "processor_response_text": tx.processor_response_text,
        "processor_response_type": tx.processor_response_type,
        "processor_authorization_code": tx.processor_authorization_code,
        "processor_settlement_response_code": tx.processor_settlement_response_code,
        "processor_settlement_response_text": tx.processor_settlement_response_text,
        "additional_processor_response": None,
        "gateway_rejection_reason": tx.gateway_rejection_reason,
        "refund_ids": XmlArray("item", list(tx.refund_ids)),
        "refunded_transaction_id": tx.refunded_transaction_id,
        "payment_instrument_type": tx.instrument.type,
        "recurring": False,
        "tax_exempt": False,
        "customer": {
            "id": tx.customer_id,
            "first_name": None,
            "last_name": None,
            "company": None,
            "email": None,
            "phone": None,
            "fax": None,
            "website": None,
        },
        detail_key: instrument_fields(tx.instrument, tx.payment_method_token),
        "status_history": XmlArray(
            "status_event",
            [
                {
                    "timestamp": event.timestamp,
                    "status": event.status,
                    "amount": format_amount(event.amount, tx.currency),
                    "transaction_source": "api",
                }
                for event in tx.status_history
            ],
        ),
        "add_ons": XmlArray("add_on", []),
        "discounts": XmlArray("discount", []),
        "disputes": XmlArray("dispute", []),
    }


# --- instruments -------------------------------------------------------------------------------
def instrument_fields(instrument: Instrument, token: str | None) -> dict[str, XmlValue]:
    """The instrument's block, as a transaction carries it (the vault adds its own fields)."""
    if instrument.type == "credit_card":
        assert instrument.card is not None
        return _card(instrument.card, token)
    if instrument.type == "apple_pay_card":
        assert instrument.card is not None
        return _apple_pay(instrument.card, token)
    if instrument.type == "android_pay_card":
        assert instrument.card is not None
        return _google_pay(instrument.card, instrument.source_card or instrument.card, token)
    if instrument.type == "paypal_account":
        assert instrument.paypal is not None
        payer = instrument.paypal
        return {
            "token": token,
            "payer_email": payer.email,
            "payer_id": payer.payer_id,
            "payer_first_name": payer.first_name,
            "payer_last_name": payer.last_name,
            "payer_status": "VERIFIED",
            "billing_agreement_id": payer.billing_agreement_id,
            "payment_id": None,
            "authorization_id": None,
            "capture_id": None,
            "refund_id": None,
            "debug_id": None,
            "payee_id": None,
            "payee_email": None,
            "custom_field": None,
            "description": None,
            "seller_protection_status": "ELIGIBLE",
            "transaction_fee_amount": None,
            "transaction_fee_currency_iso_code": None,
            "image_url": f"{_IMAGE_BASE}/paypal.png",
        }
    if instrument.type == "venmo_account":
        assert instrument.venmo is not None
        return {
            "token": token,
            "username": instrument.venmo.username,
            "venmo_user_id": instrument.venmo.venmo_user_id,
            "source_description": f"Venmo Account: {instrument.venmo.username}",
            "image_url": f"{_IMAGE_BASE}/venmo.png",
        }
    account = instrument.bank_account
    assert account is not None
    if instrument.type == "sepa_debit_account":
        return {
            "token": token,
            "last_4": account.last_4,
            "mandate_type": account.mandate_type,
            "bank_reference_token": account.bank_reference_token,
            "merchant_or_partner_customer_id": account.merchant_or_partner_customer_id,
            "capture_id": None,
            "debug_id": None,
            "paypal_v2_order_id": None,
            "refund_id": None,
            "settlement_type": None,
            "image_url": f"{_IMAGE_BASE}/sepa.png",
        }
    holder_first, _, holder_last = (account.account_holder_name or "").partition(" ")
    return {
        "token": token,
        "last_4": account.last_4,
        "routing_number": account.routing_number,
        "account_type": account.account_type,
        "account_holder_name": account.account_holder_name,
        "bank_name": account.bank_name,
        "ownership_type": "personal",
        "first_name": holder_first or None,
        "last_name": holder_last or None,
        "business_name": None,
        "verified": True,
        "ach_mandate": {
            "text": "I authorize Braintree to debit my bank account on behalf of the merchant.",
            "accepted_at": None,
        },
        "image_url": f"{_IMAGE_BASE}/us_bank_account.png",
    }


def _bin_data(card: Card) -> dict[str, XmlValue]:
    """What the card's BIN tells: a nonce's ``bin_data``, and fields of a card itself."""
    return {
        "debit": card.debit,
        "prepaid": card.prepaid,
        "commercial": card.commercial,
        "country_of_issuance": card.country_of_issuance,
        "issuing_bank": card.issuing_bank,
        "durbin_regulated": card.durbin_regulated,
        "healthcare": card.healthcare,
        "payroll": card.payroll,
        "product_id": "Unknown",
    }


def _card_basics(card: Card) -> dict[str, XmlValue]:
    return {
        "bin": card.bin,
        "expiration_month": card.expiration_month,
        "expiration_year": card.expiration_year,
        **_bin_data(card),
    }


def _card(card: Card, token: str | None) -> dict[str, XmlValue]:
    # No masked_number or expiration_date: CreditCard computes them (read-only properties).
    return {
        "token": token,
        "card_type": card.card_type,
        "last_4": card.last_4,
        **_card_basics(card),
        "expired": _expired(card),
        "customer_location": "US",
        "cardholder_name": None,
        "unique_number_identifier": card.unique_number_identifier,
        "image_url": f"{_IMAGE_BASE}/{card.card_type.lower().replace(' ', '_')}.png",
    }


def _apple_pay(card: Card, token: str | None) -> dict[str, XmlValue]:
    return {
        "token": token,
        "card_type": f"Apple Pay - {card.card_type}",
        "last_4": card.last_4,
        "payment_instrument_name": f"{card.card_type} {card.last_4}",
        "source_description": f"{card.card_type} {card.last_4}",
        "cardholder_name": f"{card.card_type} Apple Pay Cardholder",
        **_card_basics(card),
        "expired": _expired(card),
        "is_device_token": True,
        "image_url": f"{_IMAGE_BASE}/apple_pay.png",
    }


def _google_pay(virtual: Card, source: Card, token: str | None) -> dict[str, XmlValue]:
    # No last_4 or card_type: AndroidPayCard derives them from the virtual card's fields.
    return {
        "token": token,
        "virtual_card_type": virtual.card_type,
        "virtual_card_last_4": virtual.last_4,
        "source_card_type": source.card_type,
        "source_card_last_4": source.last_4,
        "source_description": f"{source.card_type} {source.last_4}",
        **_card_basics(virtual),
        "expired": _expired(virtual),
        "google_transaction_id": "google_transaction_id",
        "is_network_tokenized": False,
        "image_url": f"{_IMAGE_BASE}/android_pay.png",
    }


def _expired(card: Card) -> bool:
    now = datetime.now(UTC)
    try:
        return (int(card.expiration_year), int(card.expiration_month)) < (now.year, now.month)
    except ValueError:
        return False


# --- the vault ---------------------------------------------------------------------------------
def payment_method_document(method: VaultedMethod) -> tuple[str, dict[str, XmlValue]]:
    """(root, fields) of a vaulted payment method."""
    fields = instrument_fields(method.instrument, method.token)
    fields.update(
        {
            "customer_id": method.customer_id,
            "default": method.default,
            "created_at": method.created_at,
            "updated_at": method.updated_at,
            "subscriptions": XmlArray("subscription", []),
        }
    )
    if method.instrument.type == "paypal_account":
        # A vaulted PayPal account has no payment, capture or payee; its owner is "email"
        # (a transaction says payer_email).
        fields = {k: v for k, v in fields.items() if k not in _PAYPAL_TRANSACTION_ONLY}
        fields["email"] = fields.pop("payer_email")
    return _KEYS[method.instrument.type][1], fields


# --- nonces (payment_method_nonce.find) ---------------------------------------------------------
# Instrument type → PaymentMethodNonce.type.
_NONCE_TYPES: dict[InstrumentType, str] = {
    "credit_card": "CreditCard",
    "apple_pay_card": "ApplePayCard",
    "android_pay_card": "AndroidPayCard",
    "paypal_account": "PayPalAccount",
    "venmo_account": "VenmoAccount",
    "sepa_debit_account": "SepaDirectDebitAccount",
    "us_bank_account": "UsBankAccount",
}


def nonce_fields(nonce: str, instrument: Instrument, *, consumed: bool) -> dict[str, XmlValue]:
    """A ``<payment-method-nonce>``: its type, the instrument's ``details`` (a nonce's own
    names: ``last_four``, PayPal's ``payer_info``) and, for cards, ``bin_data``."""
    card = instrument.card
    return {
        "nonce": nonce,
        "type": _NONCE_TYPES[instrument.type],
        "default": False,
        "description": _nonce_description(instrument),
        "consumed": consumed,
        "is_locked": False,
        "details": _nonce_details(instrument),
        "bin_data": _bin_data(card) if card is not None else None,
        "three_d_secure_info": None,
        "authentication_insight": None,
    }


def _nonce_card(card: Card) -> dict[str, XmlValue]:
    return {
        "card_type": card.card_type,
        "bin": card.bin,
        "last_two": card.last_4[-2:],
        "last_four": card.last_4,
        "expiration_month": card.expiration_month,
        "expiration_year": card.expiration_year,
        "cardholder_name": None,
        "is_network_tokenized": False,
    }


def _nonce_details(instrument: Instrument) -> dict[str, XmlValue]:
    if instrument.type in ("credit_card", "apple_pay_card"):
        assert instrument.card is not None
        details = _nonce_card(instrument.card)
        if instrument.type == "apple_pay_card":
            details["payment_instrument_name"] = _nonce_description(instrument)
        return details
    if instrument.type == "android_pay_card":
        assert instrument.card is not None
        source = instrument.source_card or instrument.card
        return {
            **_nonce_card(instrument.card),
            "source_card_type": source.card_type,
            "source_card_last_four": source.last_4,
        }
    if instrument.type == "paypal_account":
        assert instrument.paypal is not None
        payer = instrument.paypal
        return {
            "email": payer.email,
            "payer_info": {
                "email": payer.email,
                "first_name": payer.first_name,
                "last_name": payer.last_name,
                "payer_id": payer.payer_id,
                "country_code": "US",
            },
        }
    if instrument.type == "venmo_account":
        assert instrument.venmo is not None
        return {
            "last_two": instrument.venmo.venmo_user_id[-2:],
            "username": instrument.venmo.username,
            "venmo_user_id": instrument.venmo.venmo_user_id,
        }
    account = instrument.bank_account
    assert account is not None
    if instrument.type == "sepa_debit_account":
        return {
            "sepa_direct_debit_account_nonce_details": {
                "bank_reference_token": account.bank_reference_token,
                "last_4": account.last_4,
                "mandate_type": account.mandate_type,
                "merchant_or_partner_customer_id": account.merchant_or_partner_customer_id,
            }
        }
    return {
        "last_four": account.last_4,
        "routing_number": account.routing_number,
        "account_type": account.account_type,
        "account_holder_name": account.account_holder_name,
        "bank_name": account.bank_name,
    }


def _nonce_description(instrument: Instrument) -> str:
    card = instrument.source_card or instrument.card
    if card is not None:
        return f"{card.card_type} ending in {card.last_4[-2:]}"
    if instrument.paypal is not None:
        return instrument.paypal.email
    if instrument.venmo is not None:
        return instrument.venmo.username
    assert instrument.bank_account is not None
    return f"Bank account ending in {instrument.bank_account.last_4[-2:]}"


def customer_fields(customer: SandboxCustomer, methods: list[VaultedMethod]) -> dict[str, XmlValue]:
    lists: dict[str, list[XmlValue]] = {name: [] for name in CUSTOMER_LISTS}
    for method in methods:
        lists[_KEYS[method.instrument.type][2]].append(payment_method_document(method)[1])
    return {
        "id": customer.id,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "company": customer.company,
        "email": customer.email,
        "phone": customer.phone,
        "fax": None,
        "website": None,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
        "custom_fields": None,
        "addresses": XmlArray("address", []),
        **{name: XmlArray(CUSTOMER_LISTS[name], items) for name, items in lists.items()},
    }


def verification_fields(verification: Verification) -> dict[str, XmlValue]:
    instrument = verification.instrument
    assert instrument.card is not None
    return {
        "id": verification.id,
        "status": verification.status,
        "amount": "0.00",
        "currency_iso_code": "USD",
        "merchant_account_id": None,
        "processor_response_code": verification.processor_response_code,
        "processor_response_text": verification.processor_response_text,
        "processor_response_type": verification.processor_response_type,
        "gateway_rejection_reason": verification.gateway_rejection_reason,
        "cvv_response_code": "M",
        "avs_error_response_code": None,
        "avs_postal_code_response_code": "I",
        "avs_street_address_response_code": "I",
        "created_at": verification.created_at,
        "credit_card": _card(instrument.card, None),
    }


# --- webhooks ----------------------------------------------------------------------------------
def notification_fields(
    kind: str, timestamp: datetime, tx: SandboxTransaction
) -> dict[str, XmlValue]:
    """A webhook notification about a transaction (braintree.WebhookNotification's shape)."""
    return {
        "timestamp": timestamp,
        "kind": kind,
        "subject": {"transaction": transaction_fields(tx)},
    }
