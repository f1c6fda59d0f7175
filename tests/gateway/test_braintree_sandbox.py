"""The Braintree adapter against the project's sandbox, through the real braintree SDK over HTTP.

Every gateway call goes through BraintreeGateway; the sandbox's JSON admin endpoints are only
used to look at what the gateway holds and to inject faults.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from devtools import REPOSITORY_ROOT
from devtools.serving import BackgroundServer
from payments.errors import GatewayMisconfigured, GatewayNotFound, GatewayUnavailable
from payments.gateway.braintree_gateway import BraintreeGateway, build_braintree_gateway
from payments.gateway.types import GatewayTransaction, SaleOutcome
from payments.money import Money
from tests.gateway.sales import gateway_on_own_sandbox, new_key, refund_whole, status_after, usd
from tests.gateway.support import SETTLE_AFTER_SECONDS, ManualClock, gateway_settings


def sell(
    gateway: BraintreeGateway,
    order_id: str,
    amount: str = "10.00",
    nonce: str = "fake-valid-nonce",
    request_key: str | None = None,
) -> SaleOutcome:
    return gateway.sale(
        request_key=request_key or new_key(),
        order_id=order_id,
        amount=usd(amount),
        payment_method_nonce=nonce,
    )


def approved_sale(gateway: BraintreeGateway, order_id: str, amount: str = "10.00") -> str:
    outcome = sell(gateway, order_id, amount)
    assert outcome.approved and outcome.transaction is not None
    return outcome.transaction.transaction_id


def held(admin: httpx.Client, **filters: str) -> list[dict[str, Any]]:
    response = admin.get("/_sandbox/transactions", params=filters)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()
    return result


def inject_fault(admin: httpx.Client, **spec: Any) -> None:
    admin.post("/_sandbox/faults", json=spec).raise_for_status()


# --- sales -------------------------------------------------------------------------------------
def test_valid_nonce_is_approved_and_submitted_for_settlement(
    gateway: BraintreeGateway, order_id: str
) -> None:
    outcome = sell(gateway, order_id, "49.99")

    assert outcome.approved
    assert (outcome.failure_reason, outcome.decline_code) == (None, None)
    tx = outcome.transaction
    assert tx is not None
    assert tx.type == "sale"
    assert tx.status == "submitted_for_settlement"
    assert tx.amount == usd("49.99")
    assert tx.order_id == order_id
    assert (tx.processor_response_code, tx.processor_response_text) == ("1000", "Approved")
    assert gateway.find(tx.transaction_id) == tx


@pytest.mark.parametrize(
    ("amount", "code", "text"),
    [
        ("2000.00", "2000", "Do Not Honor"),
        ("2001.50", "2001", "Insufficient Funds"),
        ("2015.00", "2015", "Transaction Not Allowed"),
    ],
)
def test_amounts_2000_to_2999_are_processor_declined(
    gateway: BraintreeGateway, order_id: str, amount: str, code: str, text: str
) -> None:
    outcome = sell(gateway, order_id, amount)

    assert not outcome.approved
    assert outcome.failure_reason == "processor_declined"
    assert (outcome.decline_code, outcome.decline_message) == (code, text)
    assert outcome.transaction is not None
    assert outcome.transaction.status == "processor_declined"
    assert outcome.transaction.amount == usd(amount)


def test_processor_declined_nonce_is_declined_with_2000(
    gateway: BraintreeGateway, order_id: str
) -> None:
    outcome = sell(gateway, order_id, nonce="fake-processor-declined-visa-nonce")

    assert (outcome.approved, outcome.failure_reason) == (False, "processor_declined")
    assert outcome.decline_code == "2000"


def test_amount_3000_fails_with_code_3000(gateway: BraintreeGateway, order_id: str) -> None:
    outcome = sell(gateway, order_id, "3000.00")

    assert (outcome.approved, outcome.failure_reason, outcome.decline_code) == (
        False,
        "failed",
        "3000",
    )
    assert outcome.transaction is not None and outcome.transaction.status == "failed"


def test_fraud_nonce_is_gateway_rejected(gateway: BraintreeGateway, order_id: str) -> None:
    outcome = sell(gateway, order_id, nonce="fake-gateway-rejected-fraud-nonce")

    assert (outcome.approved, outcome.failure_reason, outcome.decline_code) == (
        False,
        "gateway_rejected",
        "fraud",
    )
    assert outcome.transaction is not None
    assert outcome.transaction.status == "gateway_rejected"


@pytest.mark.parametrize(
    ("nonce", "code"),
    [("not-a-nonce", "91565"), ("fake-consumed-nonce", "91564")],
)
def test_unusable_nonce_is_a_validation_error_without_transaction(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str, nonce: str, code: str
) -> None:
    outcome = sell(gateway, order_id, nonce=nonce)

    assert not outcome.approved
    assert outcome.transaction is None
    assert (outcome.failure_reason, outcome.decline_code) == ("invalid_payment_method", code)
    assert held(admin, order_id=order_id) == []


def test_merchant_account_decides_the_currency(sandbox: BackgroundServer, order_id: str) -> None:
    # The sandbox reads a trailing ISO code in a merchant account id as its currency.
    gateway = build_braintree_gateway(
        gateway_settings(sandbox.port), merchant_account_ids={"EUR": "test-merchant-EUR"}
    )

    outcome = gateway.sale(
        request_key=new_key(),
        order_id=order_id,
        amount=Money.parse("12.50", "EUR"),
        payment_method_nonce="fake-valid-mastercard-nonce",
    )

    assert outcome.transaction is not None
    assert outcome.transaction.amount == Money(1250, "EUR")


# --- find, void, refund ------------------------------------------------------------------------
def test_unknown_transaction_is_not_found(gateway: BraintreeGateway) -> None:
    with pytest.raises(GatewayNotFound):
        gateway.find("doesnotexist")


def test_void_of_an_unsettled_sale_then_void_again_is_refused(
    gateway: BraintreeGateway, order_id: str
) -> None:
    sale_id = approved_sale(gateway, order_id)

    voided = gateway.void(request_key=new_key(), transaction_id=sale_id)

    assert voided.succeeded
    assert voided.transaction is not None
    assert (voided.transaction.transaction_id, voided.transaction.status) == (sale_id, "voided")
    assert gateway.find(sale_id).status == "voided"
    again = gateway.void(request_key=new_key(), transaction_id=sale_id)
    assert (again.succeeded, again.error_code) == (False, "91504")


def test_refund_of_an_unsettled_sale_is_refused_with_91506(
    gateway: BraintreeGateway, order_id: str
) -> None:
    sale_id = approved_sale(gateway, order_id)

    outcome = refund_whole(gateway, sale_id)

    assert (outcome.succeeded, outcome.transaction, outcome.error_code) == (False, None, "91506")


def test_settled_sale_is_fully_refunded_and_can_no_longer_be_voided(
    gateway: BraintreeGateway, clock: ManualClock, order_id: str
) -> None:
    sale_id = approved_sale(gateway, order_id, "25.00")
    clock.advance(SETTLE_AFTER_SECONDS + 1)
    assert gateway.find(sale_id).status == "settled"

    outcome = refund_whole(gateway, sale_id)

    assert outcome.succeeded
    credit = outcome.transaction
    assert credit is not None
    assert (credit.type, credit.amount, credit.refunded_transaction_id) == (
        "credit",
        usd("25.00"),
        sale_id,
    )
    assert credit.transaction_id != sale_id
    assert gateway.find(credit.transaction_id) == credit
    void = gateway.void(request_key=new_key(), transaction_id=sale_id)
    assert (void.succeeded, void.error_code) == (False, "91504")


def test_partial_refunds_until_the_sale_amount_is_used_up(
    gateway: BraintreeGateway, clock: ManualClock, order_id: str
) -> None:
    sale_id = approved_sale(gateway, order_id, "50.00")
    clock.advance(SETTLE_AFTER_SECONDS + 1)

    def refund(amount: str | None) -> tuple[bool, str | None, Money | None]:
        outcome = gateway.refund(
            request_key=new_key(),
            transaction_id=sale_id,
            amount=usd(amount) if amount else None,
        )
        return (
            outcome.succeeded,
            outcome.error_code,
            outcome.transaction.amount if outcome.transaction else None,
        )

    assert refund("20.00") == (True, None, usd("20.00"))
    assert refund("30.01") == (False, "91521", None)  # 30.00 remain
    assert refund(None) == (True, None, usd("30.00"))  # no amount: what remains
    assert refund("0.01") == (False, "91512", None)
    assert refund(None) == (False, "91512", None)


# --- idempotency -------------------------------------------------------------------------------
def test_repeated_request_key_returns_the_original_sale(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str
) -> None:
    key = new_key()
    first = sell(gateway, order_id, "15.00", request_key=key)
    second = sell(gateway, order_id, "15.00", request_key=key)

    assert first.transaction is not None and second.transaction is not None
    assert second.approved
    assert second.transaction.transaction_id == first.transaction.transaction_id
    [only] = held(admin, order_id=order_id)
    assert (only["id"], only["request_key"]) == (first.transaction.transaction_id, key)


def test_repeated_request_key_returns_the_original_refund(
    gateway: BraintreeGateway, clock: ManualClock, order_id: str
) -> None:
    sale_id = approved_sale(gateway, order_id, "40.00")
    clock.advance(SETTLE_AFTER_SECONDS + 1)
    key = new_key()

    first = gateway.refund(request_key=key, transaction_id=sale_id, amount=usd("10.00"))
    second = gateway.refund(request_key=key, transaction_id=sale_id, amount=usd("10.00"))

    assert first.succeeded and second.succeeded
    assert first.transaction is not None and second.transaction is not None
    assert second.transaction.transaction_id == first.transaction.transaction_id


def test_request_key_reused_with_another_amount_is_refused(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str
) -> None:
    key = new_key()
    assert sell(gateway, order_id, "15.00", request_key=key).approved

    reused = sell(gateway, order_id, "16.00", request_key=key)

    assert not reused.approved and reused.transaction is None
    assert (reused.decline_code, reused.failure_reason) == ("915232", "request_key_reused")
    assert [t["amount"] for t in held(admin, order_id=order_id)] == ["15.00"]


def test_search_by_order_id_finds_only_that_orders_sales(
    gateway: BraintreeGateway, clock: ManualClock, order_id: str
) -> None:
    declined = sell(gateway, order_id, "2000.00")
    approved = approved_sale(gateway, order_id, "20.00")
    approved_sale(gateway, f"{order_id}-other")
    clock.advance(SETTLE_AFTER_SECONDS + 1)
    assert refund_whole(gateway, approved).succeeded

    found = gateway.find_sales_by_order_id(order_id)

    assert declined.transaction is not None
    assert [(t.transaction_id, t.status) for t in found] == [
        (declined.transaction.transaction_id, "processor_declined"),
        (approved, "settled"),
    ]
    assert all(isinstance(t, GatewayTransaction) and t.type == "sale" for t in found)
    assert gateway.find_sales_by_order_id(f"{order_id}-nothing") == []


# --- failures of the call itself ---------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides", [{"private_key": "wrong-key"}, {"merchant_id": "another-merchant"}]
)
def test_wrong_credentials_are_a_misconfiguration(
    sandbox: BackgroundServer, admin: httpx.Client, order_id: str, overrides: dict[str, str]
) -> None:
    gateway = build_braintree_gateway(gateway_settings(sandbox.port, **overrides))

    with pytest.raises(GatewayMisconfigured):
        sell(gateway, order_id)
    assert held(admin, order_id=order_id) == []


def test_configuration_the_sdk_refuses_is_a_misconfiguration() -> None:
    with pytest.raises(GatewayMisconfigured):
        build_braintree_gateway(gateway_settings(8090, merchant_id=""))


def test_server_not_listening_is_unavailable(order_id: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = build_braintree_gateway(gateway_settings(port))

    with pytest.raises(GatewayUnavailable):
        sell(gateway, order_id)


@pytest.mark.parametrize("status_code", [429, 500, 502, 503])
def test_error_status_before_processing_is_unavailable_and_charges_nothing(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str, status_code: int
) -> None:
    inject_fault(admin, operation="sale", kind="status", status_code=status_code)

    with pytest.raises(GatewayUnavailable):
        sell(gateway, order_id)
    assert held(admin, order_id=order_id) == []


def test_malformed_response_is_unavailable(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str
) -> None:
    sale_id = approved_sale(gateway, order_id)
    inject_fault(admin, operation="find", kind="malformed")

    with pytest.raises(GatewayUnavailable):
        gateway.find(sale_id)
    assert gateway.find(sale_id).transaction_id == sale_id  # the fault was used up


def test_lost_answer_then_retry_with_the_same_key_charges_once(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str
) -> None:
    # The sandbox charges, then the answer is lost (a proxy's 502): the outcome is unknown.
    inject_fault(admin, operation="sale", kind="status", status_code=502, after_processing=True)
    key = new_key()
    with pytest.raises(GatewayUnavailable):
        sell(gateway, order_id, "30.00", request_key=key)

    retried = sell(gateway, order_id, "30.00", request_key=key)

    assert retried.approved and retried.transaction is not None
    [only] = held(admin, order_id=order_id)
    assert only["id"] == retried.transaction.transaction_id


@pytest.mark.parametrize("after_processing", [False, True])
def test_dropped_connection_is_unavailable_and_a_retry_charges_once(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str, after_processing: bool
) -> None:
    inject_fault(admin, operation="sale", kind="drop", after_processing=after_processing)
    key = new_key()
    with pytest.raises(GatewayUnavailable):
        sell(gateway, order_id, request_key=key)
    assert len(held(admin, order_id=order_id)) == (1 if after_processing else 0)

    retried = sell(gateway, order_id, request_key=key)

    assert retried.transaction is not None
    assert [t["id"] for t in held(admin, order_id=order_id)] == [retried.transaction.transaction_id]


def test_read_timeout_is_unavailable_and_the_retry_finds_the_charge(
    sandbox: BackgroundServer, admin: httpx.Client, order_id: str
) -> None:
    gateway = build_braintree_gateway(gateway_settings(sandbox.port, timeout_seconds=1))
    inject_fault(admin, operation="sale", kind="delay", delay_seconds=1.5, after_processing=True)
    key = new_key()
    with pytest.raises(GatewayUnavailable):
        sell(gateway, order_id, request_key=key)

    retried = sell(gateway, order_id, request_key=key)

    assert retried.transaction is not None
    assert [t["id"] for t in held(admin, order_id=order_id)] == [retried.transaction.transaction_id]


# --- lazy settlement on a real clock -----------------------------------------------------------
def test_submitted_sale_settles_after_the_configured_delay(order_id: str) -> None:
    # settling from 0.6 s after submission, settled from 1.2 s; nothing runs in between.
    with gateway_on_own_sandbox(settle_after_seconds=1.2) as gateway:
        started = time.monotonic()
        sale_id = approved_sale(gateway, order_id)
        assert gateway.find(sale_id).status == "submitted_for_settlement"
        assert refund_whole(gateway, sale_id).error_code == "91506"

        assert status_after(gateway, sale_id, started, 0.85) == "settling"
        assert status_after(gateway, sale_id, started, 1.35) == "settled"
        assert refund_whole(gateway, sale_id).succeeded


# --- the sandbox itself ------------------------------------------------------------------------
def test_request_log_shows_requests_but_never_nonces(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str
) -> None:
    key = new_key()
    sell(gateway, order_id, request_key=key, nonce="fake-valid-visa-nonce")

    response = admin.get("/_sandbox/requests")

    assert "fake-valid-visa-nonce" not in response.text
    [entry] = [e for e in response.json() if e.get("request_key") == key]
    assert (entry["method"], entry["path"], entry["status"], entry["operation"]) == (
        "POST",
        "/merchants/test-merchant/transactions",
        201,
        "sale",
    )
    assert admin.get("/_sandbox/healthz").json()["status"] == "ok"


def test_busy_port_is_one_clear_line_and_exit_1() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        env = {**os.environ, "SANDBOX_HOST": "127.0.0.1", "SANDBOX_PORT": str(port)}
        done = subprocess.run(
            [sys.executable, "-m", "devtools.sandbox"],
            cwd=REPOSITORY_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    assert done.returncode == 1
    assert done.stderr.strip() == (f"port {port} on 127.0.0.1 is already in use (set SANDBOX_PORT)")
