"""Describing a payment method before charging it (BIN, last 4, brand, issuing country,
fingerprint), through the adapter and the real braintree SDK against the sandbox: nonces from
the sandbox's card tokenization, Braintree's fixed test nonces, and vaulted tokens."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from payments.errors import GatewayNotFound, GatewayUnavailable
from payments.gateway.braintree_gateway import BraintreeGateway
from payments.gateway.types import PaymentMethodNotFound, PaymentMethodProfile
from tests.gateway.sales import new_key, usd

HEX32 = re.compile(r"[0-9a-f]{32}")


def tokenize(admin: httpx.Client, number: str, month: str = "12", year: str = "2030") -> str:
    """A single-use nonce for a card, as a client SDK gets one."""
    response = admin.post(
        "/_sandbox/client/tokenize",
        json={"number": number, "expiration_month": month, "expiration_year": year},
    )
    assert response.status_code == 200, response.text
    nonce: str = response.json()["nonce"]
    return nonce


def describe(gateway: BraintreeGateway, nonce: str) -> PaymentMethodProfile:
    return gateway.describe_payment_method(payment_method_nonce=nonce)


def vaulted_token(gateway: BraintreeGateway, nonce: str) -> str:
    outcome = gateway.vault(customer_id=f"cust-{uuid.uuid4().hex[:12]}", payment_method_nonce=nonce)
    assert outcome.succeeded and outcome.method is not None, outcome
    return outcome.method.token


def test_a_tokenized_card_is_described_by_its_bin_last4_and_brand(
    gateway: BraintreeGateway, admin: httpx.Client
) -> None:
    profile = describe(gateway, tokenize(admin, "5555555555554444"))

    assert profile.instrument_type == "credit_card"
    assert (profile.bin, profile.last4, profile.brand) == ("555555", "4444", "MasterCard")
    # Braintree's sandbox does not know where its test cards were issued.
    assert profile.country_of_issuance is None
    assert HEX32.fullmatch(profile.fingerprint)


def test_the_same_card_has_one_fingerprint_as_nonce_again_and_as_vaulted_token(
    gateway: BraintreeGateway, admin: httpx.Client
) -> None:
    first = describe(gateway, tokenize(admin, "4111111111111111"))
    again = describe(gateway, tokenize(admin, "4111 1111 1111 1111"))
    nonce = tokenize(admin, "4111111111111111")
    by_token = gateway.describe_payment_method(payment_method_token=vaulted_token(gateway, nonce))

    assert first == again == by_token
    assert first.bin == "411111" and first.last4 == "1111"


def test_another_card_or_expiry_has_another_fingerprint(
    gateway: BraintreeGateway, admin: httpx.Client
) -> None:
    visa = describe(gateway, tokenize(admin, "4111111111111111")).fingerprint
    other_card = describe(gateway, tokenize(admin, "4005519200000004")).fingerprint
    renewed = describe(gateway, tokenize(admin, "4111111111111111", year="2031")).fingerprint

    assert len({visa, other_card, renewed}) == 3


# Braintree's documented nonces: (brand, BIN, last 4, country of issuance).
CARD_NONCES = {
    "fake-valid-nonce": ("Visa", "401288", "1881", None),
    "fake-valid-mastercard-nonce": ("MasterCard", "555555", "4444", None),
    "fake-valid-amex-nonce": ("American Express", "378282", "0005", None),
    "fake-valid-country-of-issuance-cad-nonce": ("Visa", "401288", "1881", "CAN"),
    "fake-valid-country-of-issuance-usa-nonce": ("Visa", "401288", "1881", "USA"),
    "fake-apple-pay-amex-nonce": ("American Express", "378282", "0005", None),
    # Google Pay: the customer's own card behind the virtual one (which carries the BIN).
    "fake-android-pay-visa-nonce": ("Visa", "401288", "1111", None),
}


@pytest.mark.parametrize(("nonce", "expected"), list(CARD_NONCES.items()), ids=list(CARD_NONCES))
def test_documented_card_nonces_give_their_card_and_country(
    gateway: BraintreeGateway, nonce: str, expected: tuple[str, str, str, str | None]
) -> None:
    profile = describe(gateway, nonce)

    assert (profile.brand, profile.bin, profile.last4, profile.country_of_issuance) == expected


# Everything that can be vaulted: the token must tell what the nonce told.
VAULTABLE_NONCES = (
    "fake-valid-visa-nonce",
    "fake-valid-country-of-issuance-cad-nonce",
    "fake-apple-pay-mastercard-nonce",
    "fake-android-pay-visa-nonce",
    "fake-paypal-billing-agreement-nonce",
    "fake-venmo-account-nonce",
    "fake-sepa-direct-debit-nonce",
    "fake-us-bank-account-nonce",
)


@pytest.mark.parametrize("nonce", VAULTABLE_NONCES)
def test_a_vaulted_method_has_the_profile_of_its_nonce(
    gateway: BraintreeGateway, nonce: str
) -> None:
    by_nonce = describe(gateway, nonce)
    by_token = gateway.describe_payment_method(payment_method_token=vaulted_token(gateway, nonce))

    assert by_token == by_nonce
    assert HEX32.fullmatch(by_nonce.fingerprint)


def test_a_foreign_card_vaulted_keeps_its_country_at_the_gateway(
    gateway: BraintreeGateway,
) -> None:
    """payment_method.find of the vaulted card says what the nonce's bin_data said, and
    names the number by the same unique_number_identifier as any vaulting of that card."""
    nonce = "fake-valid-country-of-issuance-cad-nonce"
    card = gateway._sdk.payment_method.find(vaulted_token(gateway, nonce))
    same_card = gateway._sdk.payment_method.find(vaulted_token(gateway, "fake-valid-nonce"))

    assert (card.bin, card.last_4, card.country_of_issuance) == ("401288", "1881", "CAN")
    assert HEX32.fullmatch(card.unique_number_identifier)
    assert card.unique_number_identifier == same_card.unique_number_identifier
    assert same_card.country_of_issuance == "Unknown"


def test_paypal_has_a_fingerprint_of_the_payer_and_no_card_facts(
    gateway: BraintreeGateway, admin: httpx.Client
) -> None:
    one_time = describe(gateway, "fake-paypal-one-time-nonce")
    agreement = describe(gateway, "fake-paypal-billing-agreement-nonce")
    response = admin.post("/_sandbox/client/paypal", json={"email": "someone.else@example.com"})
    other_payer = describe(gateway, response.json()["nonce"])

    assert one_time == PaymentMethodProfile(
        instrument_type="paypal_account",
        bin=None,
        last4=None,
        brand=None,
        country_of_issuance=None,
        fingerprint=one_time.fingerprint,
    )
    assert HEX32.fullmatch(one_time.fingerprint)
    # The same payer (payer@example.com) whichever way they pay; another payer differs.
    assert agreement.fingerprint == one_time.fingerprint
    assert other_payer.fingerprint != one_time.fingerprint


def test_a_bank_account_has_its_last4_and_no_bin(gateway: BraintreeGateway) -> None:
    profile = describe(gateway, "fake-us-bank-account-nonce")

    assert (profile.instrument_type, profile.bin, profile.last4) == (
        "us_bank_account",
        None,
        "1234",
    )
    assert profile.brand is None and profile.country_of_issuance is None


@pytest.mark.parametrize(
    "nonce", ["no-such-nonce", "tokencc_sb_never_issued", "fake-consumed-nonce"]
)
def test_an_unknown_or_used_up_nonce_has_no_profile(gateway: BraintreeGateway, nonce: str) -> None:
    with pytest.raises(PaymentMethodNotFound) as raised:
        describe(gateway, nonce)

    # A not-found, as final as an unknown transaction: never retried.
    assert isinstance(raised.value, GatewayNotFound) and not raised.value.retryable


def test_an_unknown_token_has_no_profile(gateway: BraintreeGateway) -> None:
    with pytest.raises(PaymentMethodNotFound):
        gateway.describe_payment_method(payment_method_token=f"gone-{uuid.uuid4().hex[:8]}")


def test_describing_a_nonce_leaves_it_usable_for_the_sale(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str
) -> None:
    nonce = tokenize(admin, "378282246310005")
    profile = describe(gateway, nonce)
    assert describe(gateway, nonce) == profile  # a read, as often as needed

    sale = gateway.sale(
        request_key=new_key(), order_id=order_id, amount=usd("12.00"), payment_method_nonce=nonce
    )
    assert sale.approved, sale

    # Once the sale used it, the nonce describes nothing any more (Braintree: consumed).
    with pytest.raises(PaymentMethodNotFound):
        describe(gateway, nonce)


def test_exactly_one_reference_is_described(gateway: BraintreeGateway) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        gateway.describe_payment_method()
    with pytest.raises(ValueError, match="exactly one"):
        gateway.describe_payment_method(
            payment_method_nonce="fake-valid-nonce", payment_method_token="tok"
        )


def test_an_outage_while_describing_is_retryable(
    gateway: BraintreeGateway, admin: httpx.Client
) -> None:
    admin.post("/_sandbox/faults", json={"operation": "payment_method_nonce", "status_code": 503})

    with pytest.raises(GatewayUnavailable) as raised:
        describe(gateway, "fake-valid-nonce")

    assert raised.value.retryable
    assert describe(gateway, "fake-valid-nonce").bin == "401288"


def test_the_request_log_never_shows_the_nonce(
    gateway: BraintreeGateway, admin: httpx.Client
) -> None:
    nonce = tokenize(admin, "6011111111111117")
    describe(gateway, nonce)

    requests = admin.get("/_sandbox/requests").text
    assert nonce not in requests
    assert "/payment_method_nonces/***" in requests
