"""A gateway answer that says the request itself is wrong is permanent, never an outage.

Through the real braintree SDK over HTTP to the sandbox: a request the gateway cannot read (a
nonce or key with control characters: the sandbox answers 400, as Braintree does) raises
GatewayRequestRejected at once, where the SDK alone raises UnexpectedError, which reads as an
outage and is retried for ever. The 4xx statuses the SDK has its own exception for, and 5xx,
keep their meaning.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from devtools.serving import BackgroundServer
from payments.errors import (
    GatewayError,
    GatewayMisconfigured,
    GatewayNotFound,
    GatewayRequestRejected,
    GatewayUnavailable,
)
from payments.gateway.braintree_gateway import (
    BraintreeGateway,
    build_braintree_gateway,
    rejects_request,
)
from tests.gateway.sales import usd
from tests.gateway.support import SETTLE_AFTER_SECONDS, ManualClock, gateway_settings

UNREADABLE = "abc\u0001def"  # a control character: not allowed in XML 1.0, so the gateway 400s
# Far below the SDK's timeout (2 s in these tests) and the minutes of retries an outage gets.
QUICK_SECONDS = 1.0


def inject_fault(admin: httpx.Client, **spec: Any) -> None:
    admin.post("/_sandbox/faults", json=spec).raise_for_status()


def held(admin: httpx.Client, **filters: str) -> list[dict[str, Any]]:
    response = admin.get("/_sandbox/transactions", params=filters)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()
    return result


def sell(gateway: BraintreeGateway, order_id: str, nonce: str = "fake-valid-nonce") -> str:
    outcome = gateway.sale(
        request_key=f"key-{uuid.uuid4().hex}",
        order_id=order_id,
        amount=usd("10.00"),
        payment_method_nonce=nonce,
    )
    assert outcome.approved and outcome.transaction is not None
    return outcome.transaction.transaction_id


# --- requests the sandbox cannot read: 400 -----------------------------------------------------
def test_sale_with_an_unreadable_nonce_is_rejected_at_once_and_charges_nothing(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str
) -> None:
    started = time.monotonic()
    with pytest.raises(GatewayRequestRejected) as raised:
        gateway.sale(
            request_key=f"key-{uuid.uuid4().hex}",
            order_id=order_id,
            amount=usd("10.00"),
            payment_method_nonce=UNREADABLE,
        )

    assert time.monotonic() - started < QUICK_SECONDS
    assert raised.value.status == 400
    assert not isinstance(raised.value, GatewayUnavailable)
    assert UNREADABLE not in raised.value.message
    assert held(admin, order_id=order_id) == []


def test_vault_of_an_unreadable_nonce_is_rejected_at_once(gateway: BraintreeGateway) -> None:
    customer_id = f"cust-{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    with pytest.raises(GatewayRequestRejected) as raised:
        gateway.vault(customer_id=customer_id, payment_method_nonce=UNREADABLE)

    assert time.monotonic() - started < QUICK_SECONDS
    assert raised.value.status == 400


def test_refund_with_an_unreadable_request_key_is_rejected_and_refunds_nothing(
    gateway: BraintreeGateway, clock: ManualClock, order_id: str
) -> None:
    sale_id = sell(gateway, order_id)
    clock.advance(SETTLE_AFTER_SECONDS + 1)

    started = time.monotonic()
    with pytest.raises(GatewayRequestRejected) as raised:
        gateway.refund(request_key=UNREADABLE, transaction_id=sale_id, amount=usd("10.00"))

    assert time.monotonic() - started < QUICK_SECONDS
    assert raised.value.status == 400
    # Nothing happened: the whole amount can still be refunded.
    refunded = gateway.refund(
        request_key=f"key-{uuid.uuid4().hex}", transaction_id=sale_id, amount=usd("10.00")
    )
    assert refunded.succeeded


# --- statuses, injected before the sandbox processes the request -------------------------------
@pytest.mark.parametrize("status_code", [400, 405, 409, 411, 413, 414, 415, 422])
def test_a_status_that_means_a_wrong_request_is_rejected_not_unavailable(
    gateway: BraintreeGateway, admin: httpx.Client, order_id: str, status_code: int
) -> None:
    # The sandbox's injected statuses have an empty body: for 422 that is not the error
    # document of a decline, which the SDK would read as an empty answer (an outage).
    inject_fault(admin, operation="sale", kind="status", status_code=status_code)

    with pytest.raises(GatewayRequestRejected) as raised:
        sell(gateway, order_id)

    assert raised.value.status == status_code
    assert held(admin, order_id=order_id) == []


@pytest.mark.parametrize(
    ("status_code", "expected"),
    [
        (401, GatewayMisconfigured),
        (403, GatewayMisconfigured),
        (404, GatewayNotFound),
        (408, GatewayUnavailable),
        (426, GatewayMisconfigured),
        (429, GatewayUnavailable),
        (500, GatewayUnavailable),
        (502, GatewayUnavailable),
        (503, GatewayUnavailable),
        (504, GatewayUnavailable),
    ],
)
def test_other_statuses_keep_their_meaning(
    gateway: BraintreeGateway,
    admin: httpx.Client,
    order_id: str,
    status_code: int,
    expected: type[GatewayError],
) -> None:
    inject_fault(admin, operation="sale", kind="status", status_code=status_code)

    with pytest.raises(GatewayError) as raised:
        sell(gateway, order_id)

    assert type(raised.value) is expected


def test_a_503_on_the_vault_is_still_unavailable(
    gateway: BraintreeGateway, admin: httpx.Client
) -> None:
    inject_fault(admin, operation="payment_method", kind="status", status_code=503)

    with pytest.raises(GatewayUnavailable):
        gateway.vault(
            customer_id=f"cust-{uuid.uuid4().hex[:12]}",
            payment_method_nonce="fake-valid-visa-nonce",
        )


def test_a_decline_is_still_a_result(gateway: BraintreeGateway, order_id: str) -> None:
    # 422 with Braintree's error document: parsed by the SDK, not a rejected request.
    outcome = gateway.sale(
        request_key=f"key-{uuid.uuid4().hex}",
        order_id=order_id,
        amount=usd("2000.00"),
        payment_method_nonce="fake-valid-nonce",
    )
    assert (outcome.approved, outcome.failure_reason) == (False, "processor_declined")


# --- the classification itself ---------------------------------------------------------------
ERROR_DOCUMENT = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<api-error-response><errors><errors type="array"/>'
    "</errors><message>Do Not Honor</message></api-error-response>"
)


@pytest.mark.parametrize(
    ("status", "body", "rejected"),
    [
        (400, "", True),
        (400, "request body is not well-formed XML", True),
        (413, "", True),
        (422, ERROR_DOCUMENT, False),
        (422, "", True),
        (422, "<html>Unprocessable</html>", True),
        (422, "<api-error-response><errors>", True),  # cut short: the SDK cannot read it
        (401, "", False),
        (404, "", False),
        (429, "", False),
        (200, "", False),
        (302, "", False),
        (502, "<html>Bad Gateway</html>", False),
    ],
)
def test_rejects_request(status: int, body: str, rejected: bool) -> None:
    assert rejects_request(status, body) is rejected


def test_every_environment_classifies_statuses(sandbox: BackgroundServer) -> None:
    """Braintree's own environments cannot be reached from a test: look at the SDK
    configuration the adapter builds for them instead."""
    from payments.gateway.braintree_gateway import _ClassifyingHttp, _DirectHttp

    for environment in ("sandbox", "production"):
        adapter = build_braintree_gateway(
            gateway_settings(
                sandbox.port, environment=environment, private_key=SecretStr("not-the-dev-key")
            )
        )
        strategy = adapter._sdk.config.http_strategy()
        assert isinstance(strategy, _ClassifyingHttp)
        assert not isinstance(strategy, _DirectHttp)  # proxies apply outside local
    local = build_braintree_gateway(gateway_settings(sandbox.port))
    assert isinstance(local._sdk.config.http_strategy(), _DirectHttp)
