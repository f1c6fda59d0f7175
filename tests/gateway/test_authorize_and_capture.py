"""Authorizing without settling, capturing later, and voiding an authorization, through the
adapter and the real braintree SDK against the sandbox (what manual review needs: hold the
funds, then capture or release them)."""

from __future__ import annotations

import httpx
import pytest

from payments.errors import GatewayNotFound, GatewayUnavailable
from payments.gateway.braintree_gateway import BraintreeGateway
from payments.gateway.types import GatewayTransaction
from tests.gateway.sales import new_key, usd
from tests.gateway.support import SETTLE_AFTER_SECONDS, ManualClock


def authorize(gateway: BraintreeGateway, order_id: str, amount: str = "42.00") -> str:
    outcome = gateway.sale(
        request_key=new_key(),
        order_id=order_id,
        amount=usd(amount),
        payment_method_nonce="fake-valid-visa-nonce",
        submit_for_settlement=False,
    )
    assert outcome.approved, outcome
    assert outcome.transaction is not None
    assert outcome.transaction.status == "authorized"
    return outcome.transaction.transaction_id


def captured(gateway: BraintreeGateway, sale_id: str, key: str) -> GatewayTransaction:
    outcome = gateway.submit_for_settlement(request_key=key, transaction_id=sale_id)
    assert outcome.approved, outcome
    assert outcome.transaction is not None
    return outcome.transaction


def test_an_authorization_stays_authorized_while_time_passes(
    gateway: BraintreeGateway, clock: ManualClock, order_id: str
) -> None:
    sale_id = authorize(gateway, order_id)
    clock.advance(SETTLE_AFTER_SECONDS * 2)

    sale = gateway.find(sale_id)
    assert (sale.status, sale.amount) == ("authorized", usd("42.00"))


def test_a_captured_authorization_settles(
    gateway: BraintreeGateway, clock: ManualClock, order_id: str
) -> None:
    sale_id = authorize(gateway, order_id)

    sale = captured(gateway, sale_id, new_key())

    assert (sale.transaction_id, sale.status) == (sale_id, "submitted_for_settlement")
    assert sale.amount == usd("42.00")
    clock.advance(SETTLE_AFTER_SECONDS)
    assert gateway.find(sale_id).status == "settled"


def test_capturing_again_with_the_same_key_answers_the_same_success(
    gateway: BraintreeGateway, order_id: str
) -> None:
    sale_id = authorize(gateway, order_id)
    key = new_key()

    first = captured(gateway, sale_id, key)
    again = captured(gateway, sale_id, key)

    assert again == first


def test_capturing_twice_under_different_keys_is_refused(
    gateway: BraintreeGateway, order_id: str
) -> None:
    sale_id = authorize(gateway, order_id)
    captured(gateway, sale_id, new_key())

    second = gateway.submit_for_settlement(request_key=new_key(), transaction_id=sale_id)

    assert not second.approved
    assert second.transaction is None
    assert (second.decline_code, second.failure_reason) == ("91507", "not_authorized")
    assert second.decline_message is not None and "authorized" in second.decline_message
    assert gateway.find(sale_id).status == "submitted_for_settlement"


def test_a_capture_whose_answer_was_lost_is_retried_with_its_key(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str
) -> None:
    sale_id = authorize(gateway, order_id)
    key = new_key()
    admin.post(
        "/_sandbox/faults",
        json={"operation": "submit_for_settlement", "status_code": 503, "after_processing": True},
    )

    with pytest.raises(GatewayUnavailable):
        gateway.submit_for_settlement(request_key=key, transaction_id=sale_id)

    # The capture did happen; the retry with the same key learns so instead of a 91507.
    assert captured(gateway, sale_id, key).status == "submitted_for_settlement"


def test_voiding_an_authorization_releases_it_and_nothing_can_capture_it_after(
    gateway: BraintreeGateway, order_id: str
) -> None:
    sale_id = authorize(gateway, order_id)

    voided = gateway.void(request_key=new_key(), transaction_id=sale_id)
    capture = gateway.submit_for_settlement(request_key=new_key(), transaction_id=sale_id)

    assert voided.succeeded and voided.transaction is not None
    assert voided.transaction.status == "voided"
    assert (capture.approved, capture.decline_code) == (False, "91507")
    assert gateway.find(sale_id).status == "voided"


def test_a_declined_authorization_cannot_be_captured(
    gateway: BraintreeGateway, order_id: str
) -> None:
    declined = gateway.sale(
        request_key=new_key(),
        order_id=order_id,
        amount=usd("2000.00"),
        payment_method_nonce="fake-valid-nonce",
        submit_for_settlement=False,
    )
    assert declined.transaction is not None
    assert declined.transaction.status == "processor_declined"

    capture = gateway.submit_for_settlement(
        request_key=new_key(), transaction_id=declined.transaction.transaction_id
    )

    assert (capture.approved, capture.decline_code) == (False, "91507")


def test_capturing_an_unknown_transaction_is_not_found(gateway: BraintreeGateway) -> None:
    with pytest.raises(GatewayNotFound):
        gateway.submit_for_settlement(request_key=new_key(), transaction_id="nosuchtx")


def test_a_sale_is_still_submitted_for_settlement_by_default(
    gateway: BraintreeGateway, order_id: str
) -> None:
    outcome = gateway.sale(
        request_key=new_key(),
        order_id=order_id,
        amount=usd("5.00"),
        payment_method_nonce="fake-valid-nonce",
    )

    assert outcome.transaction is not None
    assert outcome.transaction.status == "submitted_for_settlement"
