"""Payment methods through the adapter and the real braintree SDK, against the sandbox: cards,
wallets and bank transfers, the vault, and client-side card tokenization.

Every gateway call goes through BraintreeGateway; the sandbox's JSON endpoints are only used
for what a client SDK does (tokenizing a card) and to look.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from payments.errors import GatewayUnavailable
from payments.gateway.braintree_gateway import BraintreeGateway
from payments.gateway.types import InstrumentDetails, SaleOutcome
from tests.gateway.sales import gateway_on_own_sandbox, new_key, refund_whole, status_after, usd
from tests.gateway.support import BANK_SETTLE_AFTER_SECONDS, ManualClock


def pay(
    gateway: BraintreeGateway,
    order_id: str,
    *,
    nonce: str | None = None,
    token: str | None = None,
    amount: str = "10.00",
) -> SaleOutcome:
    return gateway.sale(
        request_key=new_key(),
        order_id=order_id,
        amount=usd(amount),
        payment_method_nonce=nonce,
        payment_method_token=token,
    )


def tokenize(admin: httpx.Client, number: str, **card: str) -> httpx.Response:
    """What a client SDK does in the browser: the card goes to the gateway, not the service."""
    body = {"number": number, "expiration_month": "12", "expiration_year": "2030", **card}
    return admin.post("/_sandbox/client/tokenize", json=body)


def client_nonce(admin: httpx.Client, number: str, **card: str) -> str:
    response = tokenize(admin, number, **card)
    assert response.status_code == 200, response.text
    nonce: str = response.json()["nonce"]
    return nonce


@pytest.fixture
def customer_id() -> str:
    return f"cust-{uuid.uuid4().hex[:12]}"


# --- every kind of instrument ------------------------------------------------------------------
def card(brand: str, last4: str, display: str | None = None) -> InstrumentDetails:
    return InstrumentDetails(
        "credit_card", brand, last4, "12/2030", None, display or f"{brand} ending {last4}"
    )


def wallet_card(kind: str, brand: str, last4: str) -> InstrumentDetails:
    instrument_type, wallet, name = {
        "apple": ("apple_pay_card", "apple_pay", "Apple Pay"),
        "google": ("android_pay_card", "google_pay", "Google Pay"),
    }[kind]
    return InstrumentDetails(
        instrument_type, brand, last4, "12/2030", wallet, f"{name} ({brand} ending {last4})"
    )


PAYPAL = InstrumentDetails("paypal_account", wallet="paypal", display="PayPal (payer@example.com)")
INSTRUMENTS: dict[str, InstrumentDetails] = {
    "fake-valid-nonce": card("Visa", "1881"),
    "fake-valid-visa-nonce": card("Visa", "1881"),
    "fake-valid-mastercard-nonce": card("MasterCard", "4444"),
    "fake-valid-amex-nonce": card("American Express", "0005"),
    "fake-valid-discover-nonce": card("Discover", "1117"),
    "fake-valid-debit-nonce": card("Visa", "1881"),
    "fake-valid-prepaid-nonce": card("Visa", "1881"),
    "fake-apple-pay-visa-nonce": wallet_card("apple", "Visa", "1881"),
    "fake-apple-pay-mastercard-nonce": wallet_card("apple", "MasterCard", "4444"),
    "fake-apple-pay-amex-nonce": wallet_card("apple", "American Express", "0005"),
    "fake-android-pay-nonce": wallet_card("google", "Discover", "1111"),
    "fake-android-pay-visa-nonce": wallet_card("google", "Visa", "1111"),
    "fake-android-pay-mastercard-nonce": wallet_card("google", "MasterCard", "1111"),
    "fake-android-pay-amex-nonce": wallet_card("google", "American Express", "1111"),
    "fake-paypal-one-time-nonce": PAYPAL,
    "fake-paypal-billing-agreement-nonce": PAYPAL,
    "fake-venmo-account-nonce": InstrumentDetails(
        "venmo_account", wallet="venmo", display="Venmo (@venmojoe)"
    ),
    "fake-sepa-direct-debit-nonce": InstrumentDetails(
        "sepa_debit_account", last4="1234", display="SEPA direct debit ending 1234"
    ),
    "fake-us-bank-account-nonce": InstrumentDetails(
        "us_bank_account",
        brand="FEDERAL RESERVE BANK",
        last4="1234",
        display="Bank account ending 1234 (FEDERAL RESERVE BANK)",
    ),
}
BANK_NONCES = ("fake-sepa-direct-debit-nonce", "fake-us-bank-account-nonce")


@pytest.mark.parametrize(("nonce", "expected"), list(INSTRUMENTS.items()), ids=list(INSTRUMENTS))
def test_each_payment_method_is_approved_with_its_instrument_details(
    gateway: BraintreeGateway, order_id: str, nonce: str, expected: InstrumentDetails
) -> None:
    outcome = pay(gateway, order_id, nonce=nonce)

    assert outcome.approved, outcome
    tx = outcome.transaction
    assert tx is not None
    assert tx.instrument == expected
    # Bank transfers wait for the bank; everything else is captured at once.
    pending = "settlement_pending" if nonce in BANK_NONCES else "submitted_for_settlement"
    assert tx.status == pending
    assert gateway.find(tx.transaction_id).instrument == expected
    [found] = gateway.find_sales_by_order_id(order_id)
    assert (found.transaction_id, found.instrument) == (tx.transaction_id, expected)


def test_amount_rules_apply_to_wallets_too(gateway: BraintreeGateway, order_id: str) -> None:
    outcome = pay(gateway, order_id, nonce="fake-apple-pay-visa-nonce", amount="2001.00")

    assert (outcome.approved, outcome.failure_reason, outcome.decline_code) == (
        False,
        "processor_declined",
        "2001",
    )
    assert outcome.transaction is not None
    assert outcome.transaction.instrument == INSTRUMENTS["fake-apple-pay-visa-nonce"]


def test_order_lookup_returns_sales_only_with_their_instruments(
    gateway: BraintreeGateway, clock: ManualClock, order_id: str
) -> None:
    sale = pay(gateway, order_id, nonce="fake-venmo-account-nonce", amount="30.00")
    assert sale.transaction is not None
    clock.advance(61)
    refund = gateway.refund(
        request_key=new_key(), transaction_id=sale.transaction.transaction_id, amount=usd("5.00")
    )
    assert refund.succeeded and refund.transaction is not None
    assert refund.transaction.instrument == INSTRUMENTS["fake-venmo-account-nonce"]

    found = gateway.find_sales_by_order_id(order_id)

    assert [(t.transaction_id, t.type, t.instrument) for t in found] == [
        (sale.transaction.transaction_id, "sale", INSTRUMENTS["fake-venmo-account-nonce"])
    ]


# --- bank transfers ----------------------------------------------------------------------------
def test_bank_transfer_is_pending_then_settles_after_the_configured_delay(order_id: str) -> None:
    with gateway_on_own_sandbox(settle_after_seconds=60, bank_settle_after_seconds=1.0) as gateway:
        outcome = pay(gateway, order_id, nonce="fake-sepa-direct-debit-nonce", amount="120.00")
        # After the answer: the sale was made before, so it settles before started + 1.0 s
        # and (unless its answer took 0.7 s) after started + 0.3 s, on a loaded machine too.
        started = time.monotonic()
        assert outcome.approved and outcome.transaction is not None
        sale_id = outcome.transaction.transaction_id
        assert outcome.transaction.status == "settlement_pending"
        assert refund_whole(gateway, sale_id).error_code == "91506"

        assert status_after(gateway, sale_id, started, 0.3) == "settlement_pending"
        assert status_after(gateway, sale_id, started, 1.2) == "settled"
        assert refund_whole(gateway, sale_id).succeeded


@pytest.mark.parametrize(
    ("nonce", "amount", "final"),
    [
        ("fake-us-bank-account-nonce", "4500.00", "settlement_declined"),
        ("fake-sepa-direct-debit-nonce", "4001.00", "settlement_declined"),
        ("fake-us-bank-account-nonce", "5000.99", "settlement_declined"),
        ("fake-us-bank-account-nonce", "4000.99", "settled"),
        ("fake-us-bank-account-nonce", "5001.01", "settled"),
    ],
)
def test_bank_settlement_is_declined_for_4001_to_5000_99(
    gateway: BraintreeGateway,
    clock: ManualClock,
    order_id: str,
    nonce: str,
    amount: str,
    final: str,
) -> None:
    outcome = pay(gateway, order_id, nonce=nonce, amount=amount)
    assert outcome.approved and outcome.transaction is not None
    assert outcome.transaction.status == "settlement_pending"

    clock.advance(BANK_SETTLE_AFTER_SECONDS + 1)

    assert gateway.find(outcome.transaction.transaction_id).status == final


def test_cards_are_not_settlement_declined(
    gateway: BraintreeGateway, clock: ManualClock, order_id: str
) -> None:
    outcome = pay(gateway, order_id, nonce="fake-valid-nonce", amount="4500.00")
    assert outcome.transaction is not None

    clock.advance(BANK_SETTLE_AFTER_SECONDS + 1)

    assert gateway.find(outcome.transaction.transaction_id).status == "settled"


# --- the vault ---------------------------------------------------------------------------------
def test_vaulted_nonce_gives_a_token_that_pays(
    gateway: BraintreeGateway, customer_id: str, order_id: str
) -> None:
    vaulted = gateway.vault(customer_id=customer_id, payment_method_nonce="fake-valid-amex-nonce")

    assert vaulted.succeeded and vaulted.method is not None
    assert vaulted.method.customer_id == customer_id
    assert vaulted.method.instrument == INSTRUMENTS["fake-valid-amex-nonce"]
    token = vaulted.method.token

    outcome = pay(gateway, order_id, token=token, amount="42.00")

    assert outcome.approved and outcome.transaction is not None
    assert outcome.transaction.status == "submitted_for_settlement"
    assert outcome.transaction.instrument == vaulted.method.instrument
    declined = pay(gateway, order_id, token=token, amount="2000.00")
    assert (declined.approved, declined.failure_reason, declined.decline_code) == (
        False,
        "processor_declined",
        "2000",
    )


@pytest.mark.parametrize(
    "nonce",
    [
        "fake-apple-pay-mastercard-nonce",
        "fake-android-pay-visa-nonce",
        "fake-paypal-billing-agreement-nonce",
        "fake-venmo-account-nonce",
        "fake-sepa-direct-debit-nonce",
        "fake-us-bank-account-nonce",
    ],
)
def test_wallets_and_bank_accounts_are_vaulted_with_their_details(
    gateway: BraintreeGateway, customer_id: str, order_id: str, nonce: str
) -> None:
    vaulted = gateway.vault(customer_id=customer_id, payment_method_nonce=nonce)

    assert vaulted.succeeded and vaulted.method is not None
    assert vaulted.method.instrument == INSTRUMENTS[nonce]
    outcome = pay(gateway, order_id, token=vaulted.method.token)
    assert outcome.approved and outcome.transaction is not None
    assert outcome.transaction.instrument == INSTRUMENTS[nonce]
    pending = "settlement_pending" if nonce in BANK_NONCES else "submitted_for_settlement"
    assert outcome.transaction.status == pending


def test_a_method_vaulted_under_our_token_is_found_by_it_after_a_lost_answer(
    gateway: BraintreeGateway, admin: httpx.Client, customer_id: str
) -> None:
    """The vault's answer is lost after the gateway stored the method (longer than the SDK's
    timeout): the token we chose finds it; vaulting the spent nonce again would not."""
    token = uuid.uuid4().hex
    admin.post(
        "/_sandbox/faults",
        json={
            "operation": "payment_method",
            "kind": "delay",
            "delay_seconds": 3,  # the test gateway's SDK timeout is 2 s
            "after_processing": True,
        },
    ).raise_for_status()
    with pytest.raises(GatewayUnavailable):
        gateway.vault(
            customer_id=customer_id, payment_method_nonce="fake-valid-visa-nonce", token=token
        )

    found = gateway.find_payment_method(token)

    assert found is not None
    assert (found.token, found.customer_id) == (token, customer_id)
    assert found.instrument == INSTRUMENTS["fake-valid-visa-nonce"]
    again = gateway.vault(
        customer_id=customer_id, payment_method_nonce="fake-valid-visa-nonce", token=token
    )
    assert not again.succeeded  # consumed nonce, token in use: never a second method
    gateway.delete_payment_method(token)
    assert gateway.find_payment_method(token) is None


def test_an_existing_customer_gets_another_method(
    gateway: BraintreeGateway, customer_id: str
) -> None:
    first = gateway.vault(customer_id=customer_id, payment_method_nonce="fake-valid-visa-nonce")
    second = gateway.vault(customer_id=customer_id, payment_method_nonce="fake-venmo-account-nonce")

    assert first.method is not None and second.method is not None
    assert first.method.token != second.method.token
    assert first.method.customer_id == second.method.customer_id == customer_id


@pytest.mark.parametrize(
    ("nonce", "code"),
    [
        ("not-a-nonce", "93108"),  # unknown
        ("fake-consumed-nonce", "93107"),
        ("fake-paypal-one-time-nonce", "82902"),  # a one-time payment cannot be vaulted
        ("fake-processor-declined-visa-nonce", "2000"),  # fails card verification
        ("fake-luhn-invalid-nonce", "81715"),
    ],
)
def test_unusable_nonce_is_not_vaulted(
    gateway: BraintreeGateway, customer_id: str, nonce: str, code: str
) -> None:
    outcome = gateway.vault(customer_id=customer_id, payment_method_nonce=nonce)

    assert (outcome.succeeded, outcome.method, outcome.error_code) == (False, None, code)
    assert outcome.error_message


def test_invalid_customer_id_is_refused(gateway: BraintreeGateway) -> None:
    outcome = gateway.vault(customer_id="not valid!", payment_method_nonce="fake-valid-nonce")

    assert (outcome.succeeded, outcome.error_code) == (False, "91610")


def test_delete_is_idempotent_and_the_token_stops_paying(
    gateway: BraintreeGateway, customer_id: str, order_id: str
) -> None:
    vaulted = gateway.vault(customer_id=customer_id, payment_method_nonce="fake-valid-nonce")
    assert vaulted.method is not None
    token = vaulted.method.token

    gateway.delete_payment_method(token)
    gateway.delete_payment_method(token)  # already gone: not an error
    gateway.delete_payment_method("never-existed")

    outcome = pay(gateway, order_id, token=token)
    assert (outcome.approved, outcome.transaction) == (False, None)
    assert (outcome.failure_reason, outcome.decline_code) == ("invalid_payment_method", "91518")


def test_sale_needs_exactly_one_of_nonce_and_token(
    gateway: BraintreeGateway, order_id: str
) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        pay(gateway, order_id)
    with pytest.raises(ValueError, match="exactly one"):
        pay(gateway, order_id, nonce="fake-valid-nonce", token="abc")


# --- client-side tokenization ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("number", "brand", "last4"),
    [
        ("4111111111111111", "Visa", "1111"),
        ("5555555555554444", "MasterCard", "4444"),
        ("378282246310005", "American Express", "0005"),
        ("6011111111111117", "Discover", "1117"),
        ("3530111333300000", "JCB", "0000"),
    ],
)
def test_tokenized_card_pays_with_its_brand_and_last4(
    gateway: BraintreeGateway,
    admin: httpx.Client,
    order_id: str,
    number: str,
    brand: str,
    last4: str,
) -> None:
    nonce = client_nonce(admin, number, expiration_month="7", expiration_year="2031")

    outcome = pay(gateway, order_id, nonce=nonce)

    assert outcome.approved and outcome.transaction is not None
    assert outcome.transaction.instrument == InstrumentDetails(
        "credit_card", brand, last4, "07/2031", None, f"{brand} ending {last4}"
    )


def test_a_client_nonce_is_single_use(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str, customer_id: str
) -> None:
    nonce = client_nonce(admin, "4111111111111111", cvv="123")
    assert pay(gateway, order_id, nonce=nonce).approved

    again = pay(gateway, order_id, nonce=nonce)

    assert (again.approved, again.transaction) == (False, None)
    assert (again.failure_reason, again.decline_code) == ("invalid_payment_method", "91564")
    vault = gateway.vault(customer_id=customer_id, payment_method_nonce=nonce)
    assert (vault.succeeded, vault.error_code) == (False, "93107")


def test_a_vaulted_client_nonce_is_used_up_but_its_token_pays(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str, customer_id: str
) -> None:
    nonce = client_nonce(admin, "5555555555554444")
    vaulted = gateway.vault(customer_id=customer_id, payment_method_nonce=nonce)
    assert vaulted.method is not None
    assert vaulted.method.instrument.display == "MasterCard ending 4444"

    assert pay(gateway, order_id, nonce=nonce).decline_code == "91564"
    assert pay(gateway, order_id, token=vaulted.method.token).approved


def test_card_failing_verification_is_not_vaulted_and_declined_on_sale(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str, customer_id: str
) -> None:
    vault = gateway.vault(
        customer_id=customer_id, payment_method_nonce=client_nonce(admin, "4000111111111115")
    )
    assert (vault.succeeded, vault.error_code, vault.error_message) == (
        False,
        "2000",
        "Do Not Honor",
    )

    sale = pay(gateway, order_id, nonce=client_nonce(admin, "4000111111111115"))

    assert (sale.approved, sale.failure_reason, sale.decline_code) == (
        False,
        "processor_declined",
        "2000",
    )
    assert sale.transaction is not None and sale.transaction.instrument is not None
    assert sale.transaction.instrument.last4 == "1115"


@pytest.mark.parametrize(
    ("card", "code", "field"),
    [
        ({"number": "4111111111111112"}, "81715", "number"),  # Luhn check fails
        ({"number": "4111 1111 1111 1112"}, "81715", "number"),
        ({"number": "41111111"}, "81716", "number"),
        ({"number": "4111111111111111", "expiration_month": "13"}, "81712", "expiration_month"),
        ({"number": "4111111111111111", "expiration_year": "30000"}, "81713", "expiration_year"),
        ({"number": "4111111111111111", "cvv": "12"}, "81707", "cvv"),
    ],
)
def test_tokenization_refuses_invalid_cards_without_echoing_them(
    admin: httpx.Client, card: dict[str, str], code: str, field: str
) -> None:
    response = tokenize(admin, **card)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["field"] == field
    assert card["number"] not in response.text


def test_tokenization_refuses_a_body_without_a_card(admin: httpx.Client) -> None:
    response = admin.post("/_sandbox/client/tokenize", json={"number": "4111111111111111"})

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "expiration_month,expiration_year"
    assert "4111111111111111" not in response.text


def test_card_numbers_and_cvvs_never_reach_logs_or_admin_views(
    gateway: BraintreeGateway,
    admin: httpx.Client,
    order_id: str,
    customer_id: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    number = "378282246310005"
    nonce = client_nonce(admin, number, cvv="7391")
    vaulted = gateway.vault(customer_id=customer_id, payment_method_nonce=nonce)
    assert vaulted.method is not None
    assert pay(gateway, order_id, token=vaulted.method.token).approved
    tokenize(admin, "4111111111111112", cvv="8264")  # refused

    logs = str(capfd.readouterr())
    views = [
        admin.get("/_sandbox/requests").text,
        admin.get("/_sandbox/transactions", params={"order_id": order_id}).text,
    ]

    for text in [logs, *views]:
        assert number not in text and "4111111111111112" not in text
    # (CVVs are short enough to occur by chance in ids and timestamps: look for the field.)
    assert "cvv" not in logs.lower()
