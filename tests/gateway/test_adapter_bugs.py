"""A bug in our gateway adapter is not an outage: it fails for good and is logged as a bug,
while the same exception types raised by the SDK reading a malformed answer stay retryable.

Against the sandbox through the real SDK, except where an SDK object is built by hand to
show where the SDK itself raises."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import braintree
import httpx
import pytest
from structlog.testing import capture_logs

from payments.errors import GatewayError, GatewayUnavailable
from payments.gateway import braintree_gateway
from payments.gateway.braintree_gateway import BraintreeGateway
from tests.gateway.sales import new_key, usd


def inject_fault(admin: httpx.Client, **spec: Any) -> None:
    admin.post("/_sandbox/faults", json=spec).raise_for_status()


def sale_error(gateway: BraintreeGateway, order_id: str) -> GatewayError:
    with pytest.raises(GatewayError) as raised:
        gateway.sale(
            request_key=new_key(),
            order_id=order_id,
            amount=usd("10.00"),
            payment_method_nonce="fake-valid-nonce",
        )
    return raised.value


@pytest.mark.parametrize("bug", [KeyError("instrument"), AttributeError("x"), TypeError("y")])
def test_a_bug_in_the_adapter_fails_for_good_and_is_logged_as_one(
    gateway: BraintreeGateway,
    order_id: str,
    monkeypatch: pytest.MonkeyPatch,
    bug: Exception,
) -> None:
    def broken(tx: Any) -> None:
        raise bug

    # Our code reading a good answer raises: the same would happen on every retry.
    monkeypatch.setattr(braintree_gateway, "_transaction_instrument", broken)
    with capture_logs() as logs:
        error = sale_error(gateway, order_id)

    assert (error.code, error.retryable) == ("gateway_adapter_bug", False), error
    [logged] = [entry for entry in logs if entry["event"] == "gateway_adapter_bug"]
    assert logged["log_level"] == "error"
    assert logged["operation"] == "sale" and logged["order_id"] == order_id
    assert logged["exc_info"] is bug  # rendered as the traceback by the configured logger


def test_arguments_the_sdk_refuses_are_a_bug_not_an_outage(
    gateway: BraintreeGateway, order_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK checks the keys of a request before sending it (KeyError "Invalid keys"): a
    KeyError raised inside the SDK, but about what we asked."""
    sdk_sale = gateway._sdk.transaction.sale
    monkeypatch.setattr(
        gateway._sdk.transaction, "sale", lambda params: sdk_sale({**params, "no_such": 1})
    )

    error = sale_error(gateway, order_id)

    assert (error.code, error.retryable) == ("gateway_adapter_bug", False), error


def test_a_malformed_answer_to_a_sale_stays_retryable(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str
) -> None:
    inject_fault(admin, operation="sale", kind="malformed")

    error = sale_error(gateway, order_id)

    assert isinstance(error, GatewayUnavailable) and error.retryable


def test_an_answer_the_sdk_cannot_read_stays_retryable() -> None:
    """A transaction without an amount: the SDK itself raises AttributeError building it."""
    with pytest.raises(AttributeError) as raised:
        braintree.Transaction(None, {"id": "t1", "type": "sale", "status": "settled"})

    error = braintree_gateway._translate("find", raised.value)

    assert isinstance(error, GatewayUnavailable)


class _Found:
    """What the SDK would hand over for a transaction document without an id."""

    type = "sale"
    status = "settled"
    amount = Decimal("10.00")
    currency_iso_code = "USD"


def test_an_answer_missing_a_field_our_code_reads_stays_retryable() -> None:
    class Transactions:
        def find(self, transaction_id: str) -> _Found:
            return _Found()

    class Sdk:
        transaction = Transactions()

    with pytest.raises(GatewayUnavailable, match="without id"):
        BraintreeGateway(Sdk()).find("t1")
