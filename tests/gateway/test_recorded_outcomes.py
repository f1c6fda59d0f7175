"""What the gateway says, recorded: a sale through the sandbox, charged by the charge activity
and recorded by the ledger activity on SQLite and PostgreSQL (which refuses a string longer
than its column, where SQLite stores it)."""

from __future__ import annotations

import uuid

import httpx
import pytest
import sqlalchemy as sa
from temporalio.testing import ActivityEnvironment

from activities.gateway import GatewayActivities
from activities.ledger import LedgerActivities
from payments.contracts import (
    ChargeRequest,
    PaymentOutcome,
    PaymentRequest,
    PaymentSnapshot,
)
from payments.crypto import TokenCipher
from payments.db import columns
from payments.db.database import Database
from payments.db.models import Payment
from payments.gateway.braintree_gateway import BraintreeGateway
from payments.keyring import KeyRing, new_key_entry
from payments.money import Money

MERCHANT = "default"  # created by the migration


class Checkout:
    """The charge and the recording of its outcome, as PaymentWorkflow runs them."""

    def __init__(self, gateway: BraintreeGateway, engine: sa.Engine) -> None:
        self.db = Database(engine)
        self._gateway = GatewayActivities(
            gateway,
            self.db.payment_methods,
            TokenCipher(KeyRing.parse(new_key_entry("k1"))),
            default_merchant_id=MERCHANT,
        )
        self._ledger = LedgerActivities(self.db, default_merchant_id=MERCHANT)

    def pay(self, amount: str, nonce: str) -> Payment:
        money = Money.parse(amount, "USD")
        request = PaymentRequest(
            payment_id=str(uuid.uuid4()),
            order_id=f"order-{uuid.uuid4().hex[:12]}",
            user_id="user-1",
            amount_minor=money.minor,
            currency=money.currency,
            payment_method="paypal",
            payment_token=nonce,
            merchant_id=MERCHANT,
        )
        env = ActivityEnvironment()
        env.run(self._ledger.record_payment_pending, request)
        charge = env.run(
            self._gateway.charge,
            ChargeRequest(
                payment_id=request.payment_id,
                order_id=request.order_id,
                user_id=request.user_id,
                amount_minor=request.amount_minor,
                currency=request.currency,
                payment_token=nonce,
            ),
        )
        recorded: PaymentSnapshot = env.run(
            self._ledger.record_payment_outcome,
            PaymentOutcome.of_charge(request.payment_id, charge),  # as the workflow records it
        )
        stored = self.db.payments.get(recorded.payment_id)
        assert stored is not None
        return stored


@pytest.fixture
def checkout(gateway: BraintreeGateway, engine: sa.Engine) -> Checkout:
    return Checkout(gateway, engine)


def test_a_gateway_rejection_is_a_failure_reason_not_a_response_code(checkout: Checkout) -> None:
    # 5001.00: the sandbox rejects the sale as Braintree does, "application_incomplete".
    payment = checkout.pay("5001.00", "fake-valid-nonce")

    assert (payment.payment_status, payment.failure_reason) == ("failure", "gateway_rejected")
    assert payment.processor_response_code is None
    assert payment.failure_message == "Gateway Rejected: application_incomplete"
    assert payment.gateway_status == "gateway_rejected"


def test_a_long_paypal_address_is_shown_cut_to_its_column(
    checkout: Checkout, admin: httpx.Client
) -> None:
    email = "a.very.patient.buyer." + "x" * 150 + "@example.com"
    nonce = admin.post("/_sandbox/client/paypal", json={"email": email}).json()["nonce"]

    payment = checkout.pay("25.00", nonce)

    assert payment.payment_status == "success"
    assert (payment.instrument_type, payment.wallet_type) == ("paypal_account", "paypal")
    assert payment.instrument_display == f"PayPal ({email})"[: columns.INSTRUMENT_DISPLAY]


def test_a_processor_decline_keeps_its_response_code(checkout: Checkout) -> None:
    payment = checkout.pay("2001.00", "fake-valid-nonce")

    assert (payment.failure_reason, payment.processor_response_code) == (
        "processor_declined",
        "2001",
    )
    assert payment.decline_type == "soft"
