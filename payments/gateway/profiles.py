"""Payment-method profiles: what fraud rules may know of an instrument before it is charged.

Read from the braintree SDK's objects (a ``PaymentMethodNonce`` from ``payment_method_nonce.
find``, or a vaulted ``CreditCard``/``PayPalAccount``/... from ``payment_method.find``) by
attribute and key names only, so this module needs no SDK import. The two sources name the
same facts differently (a nonce's ``details`` say ``last_four``, a vaulted card ``last_4``; a
nonce's PayPal e-mail sits in ``details.payer_info``): every read below lists the spellings of
both, which is what makes a card give the same fingerprint as a nonce and as a token.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from payments.db import columns
from payments.db.columns import cut
from payments.gateway.types import PaymentMethodProfile

# PaymentMethodNonce.type → payment_instrument_type (the names transactions use). Other
# types fall back to their snake_case spelling.
_NONCE_TYPES = {
    "CreditCard": "credit_card",
    "ApplePayCard": "apple_pay_card",
    "AndroidPayCard": "android_pay_card",
    "GooglePayCard": "android_pay_card",
    "PayPalAccount": "paypal_account",
    "VenmoAccount": "venmo_account",
    "UsBankAccount": "us_bank_account",
    "SepaDirectDebitAccount": "sepa_debit_account",
    "SEPADirectDebitAccount": "sepa_debit_account",
}
# Instruments that are a card (a wallet's card included): bin, last 4, brand, expiry.
_CARD_TYPES = frozenset({"credit_card", "apple_pay_card", "android_pay_card"})
_APPLE_PAY_PREFIX = "Apple Pay - "  # a vaulted ApplePayCard's card_type: "Apple Pay - Visa"
_BIN = re.compile(r"\d{6,8}")
# Braintree says "Unknown" when it does not know the issuing country.
_COUNTRY = re.compile(r"[A-Z]{3}")
# Nested blocks of a nonce's details whose fields count as the details' own.
_NESTED_DETAILS = ("payer_info", "sepa_direct_debit_account_nonce_details")
FINGERPRINT_LENGTH = 32


class _Fields:
    """Text fields of the SDK objects or dicts that describe one instrument, first match wins;
    "" and None both mean absent."""

    def __init__(self, *sources: Any) -> None:
        self._sources = [source for source in sources if source is not None]

    def get(self, *names: str) -> str | None:
        for name in names:
            for source in self._sources:
                if isinstance(source, Mapping):
                    value = source.get(name)
                else:
                    value = getattr(source, name, None)
                if value is not None and value != "" and not isinstance(value, Mapping):
                    return str(value)
        return None


def nonce_profile(nonce: Any, reference: str) -> PaymentMethodProfile:
    """The profile of a found ``PaymentMethodNonce`` (``reference`` is the nonce itself)."""
    details = getattr(nonce, "details", None)
    nested = [details.get(key) for key in _NESTED_DETAILS] if isinstance(details, Mapping) else []
    bin_data = getattr(nonce, "bin_data", None)
    return _profile(
        _nonce_instrument_type(getattr(nonce, "type", None)),
        _Fields(details, *nested),
        _Fields(bin_data).get("country_of_issuance"),
        reference,
    )


def vaulted_profile(instrument_type: str, method: Any, reference: str) -> PaymentMethodProfile:
    """The profile of a vaulted payment method (``reference`` is its token)."""
    fields = _Fields(method)
    return _profile(instrument_type, fields, fields.get("country_of_issuance"), reference)


def _profile(
    instrument_type: str, fields: _Fields, country: str | None, reference: str
) -> PaymentMethodProfile:
    instrument_type = instrument_type[: columns.INSTRUMENT_TYPE]
    country = country.strip().upper() if country else None
    if country is not None and not _COUNTRY.fullmatch(country):
        country = None
    # Google Pay: the customer's own card (source) rather than the per-device virtual one.
    last4 = cut(
        fields.get("source_card_last_four", "source_card_last_4", "last_four", "last_4"),
        columns.LAST4,
    )
    if instrument_type in _CARD_TYPES:
        raw_bin = fields.get("bin")
        card_bin = raw_bin if raw_bin is not None and _BIN.fullmatch(raw_bin) else None
        brand = fields.get("source_card_type", "card_type")
        if brand is not None:
            brand = cut(brand.removeprefix(_APPLE_PAY_PREFIX), columns.BRAND)
        identity = None
        if card_bin is not None or last4 is not None:
            identity = [card_bin or "", last4 or "", _expiration(fields) or ""]
        return PaymentMethodProfile(
            instrument_type=instrument_type,
            bin=card_bin,
            last4=last4,
            brand=brand,
            country_of_issuance=country,
            fingerprint=_fingerprint(instrument_type, identity, reference),
        )
    return PaymentMethodProfile(
        instrument_type=instrument_type,
        bin=None,
        last4=last4 if instrument_type in ("us_bank_account", "sepa_debit_account") else None,
        brand=None,
        country_of_issuance=country,
        fingerprint=_fingerprint(
            instrument_type, _account_identity(instrument_type, fields, last4), reference
        ),
    )


def _account_identity(instrument_type: str, fields: _Fields, last4: str | None) -> list[str] | None:
    """What names a wallet account or a bank account, the same whether read from a nonce or a
    vaulted method; None if the gateway shows nothing that does."""
    if instrument_type == "paypal_account":
        # E-mail addresses are case-insensitive in practice: one payer, one fingerprint.
        email = fields.get("email", "payer_email")
        if email is not None:
            return [email.strip().lower()]
        payer_id = fields.get("payer_id")
        return ["payer_id", payer_id] if payer_id is not None else None
    if instrument_type == "venmo_account":
        user_id = fields.get("venmo_user_id")
        if user_id is not None:
            return [user_id]
        username = fields.get("username")
        return ["username", username.lower()] if username is not None else None
    if instrument_type == "us_bank_account":
        routing = fields.get("routing_number")
        return [routing, last4 or ""] if routing is not None else None
    if instrument_type == "sepa_debit_account":
        mandate = fields.get("bank_reference_token")
        return [mandate] if mandate is not None else None
    return None


def _fingerprint(instrument_type: str, identity: list[str] | None, reference: str) -> str:
    if identity is None:
        # Nothing names the instrument: a fingerprint of this reference alone, so that two
        # unrelated instruments never look like one to a velocity rule.
        identity = ["reference", reference]
    digest = hashlib.sha256("|".join([instrument_type, *identity]).encode())
    return digest.hexdigest()[:FINGERPRINT_LENGTH]


def _expiration(fields: _Fields) -> str | None:
    month, year = fields.get("expiration_month"), fields.get("expiration_year")
    if month is None or year is None or not month.isdigit():
        return None
    return f"{int(month):02d}/{year}"


def _nonce_instrument_type(type_name: Any) -> str:
    name = str(type_name or "").strip()
    if not name:
        return "unknown"
    if name in _NONCE_TYPES:
        return _NONCE_TYPES[name]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
