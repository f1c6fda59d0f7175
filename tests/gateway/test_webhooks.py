"""Webhooks: the sandbox announces settlements the way Braintree does, and the adapter verifies
them with the SDK's ``webhook_notification.parse``.

A stdlib HTTP server in a thread plays the service's webhook endpoint; the sandbox's clock is
moved forward instead of waiting for settlement.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator

import braintree
import httpx
import pytest

from devtools.sandbox.webhooks import sign_payload
from devtools.serving import BackgroundServer
from payments.errors import InvalidWebhook
from payments.gateway.braintree_gateway import BraintreeGateway, build_braintree_gateway
from payments.gateway.types import WebhookEvent
from payments.money import Money
from tests.gateway.support import (
    BANK_SETTLE_AFTER_SECONDS,
    MERCHANT_ID,
    PRIVATE_KEY,
    PUBLIC_KEY,
    SETTLE_AFTER_SECONDS,
    ManualClock,
    ReceivedWebhook,
    WebhookReceiver,
    gateway_settings,
    start_sandbox,
)


def sale_id(gateway: BraintreeGateway, nonce: str, amount: str) -> str:
    outcome = gateway.sale(
        request_key=uuid.uuid4().hex,
        order_id=f"order-{uuid.uuid4().hex[:12]}",
        amount=Money.parse(amount, "USD"),
        payment_method_nonce=nonce,
    )
    assert outcome.approved and outcome.transaction is not None
    return outcome.transaction.transaction_id


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def webhook_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def webhook_sandbox(
    receiver: WebhookReceiver, webhook_clock: ManualClock
) -> Iterator[BackgroundServer]:
    server = start_sandbox(SETTLE_AFTER_SECONDS, webhook_clock, webhook_url=receiver.url)
    yield server
    server.stop()


@pytest.fixture
def webhook_gateway(webhook_sandbox: BackgroundServer) -> BraintreeGateway:
    return build_braintree_gateway(gateway_settings(webhook_sandbox.port))


def test_settlements_are_announced_with_verifiable_webhooks(
    webhook_gateway: BraintreeGateway,
    webhook_sandbox: BackgroundServer,
    webhook_clock: ManualClock,
    receiver: WebhookReceiver,
) -> None:
    card_sale = sale_id(webhook_gateway, "fake-valid-nonce", "25.00")
    bank_sale = sale_id(webhook_gateway, "fake-us-bank-account-nonce", "4500.00")
    assert receiver.requests == 0

    # Nobody reads the transactions: the sandbox notices the settlements by itself.
    webhook_clock.advance(max(SETTLE_AFTER_SECONDS, BANK_SETTLE_AFTER_SECONDS) + 1)
    received = receiver.wait_for(2)

    events = sorted(
        (webhook_gateway.parse_webhook(w.bt_signature, w.bt_payload) for w in received),
        key=lambda event: event.kind,
    )
    assert [(e.kind, e.transaction_id, e.transaction_status) for e in events] == [
        (braintree.WebhookNotification.Kind.TransactionSettled, card_sale, "settled"),
        (
            braintree.WebhookNotification.Kind.TransactionSettlementDeclined,
            bank_sale,
            "settlement_declined",
        ),
    ]
    assert all(e.timestamp for e in events)
    assert {w.content_type for w in received} == {"application/x-www-form-urlencoded"}
    deliveries = httpx.get(f"{webhook_sandbox.url}/_sandbox/webhooks").json()
    assert sorted((d["transaction_id"], d["state"], len(d["attempts"])) for d in deliveries) == (
        sorted([(card_sale, "delivered", 1), (bank_sale, "delivered", 1)])
    )


def test_a_settlement_is_announced_once_even_if_read_first(
    webhook_gateway: BraintreeGateway, webhook_clock: ManualClock, receiver: WebhookReceiver
) -> None:
    sale = sale_id(webhook_gateway, "fake-valid-mastercard-nonce", "12.00")
    webhook_clock.advance(SETTLE_AFTER_SECONDS + 1)
    # A read notices the settlement before the dispatcher's tick does.
    assert webhook_gateway.find(sale).status == "settled"

    [only] = receiver.wait_for(1)
    later = sale_id(webhook_gateway, "fake-valid-nonce", "13.00")
    webhook_clock.advance(SETTLE_AFTER_SECONDS + 1)
    received = receiver.wait_for(2)

    ids = [
        webhook_gateway.parse_webhook(w.bt_signature, w.bt_payload).transaction_id for w in received
    ]
    assert ids == [sale, later]
    assert only == received[0]


def test_a_failing_receiver_is_retried(webhook_clock: ManualClock) -> None:
    with WebhookReceiver(fail_first=1) as receiver:
        server = start_sandbox(SETTLE_AFTER_SECONDS, webhook_clock, webhook_url=receiver.url)
        try:
            gateway = build_braintree_gateway(gateway_settings(server.port))
            sale = sale_id(gateway, "fake-valid-nonce", "10.00")
            webhook_clock.advance(SETTLE_AFTER_SECONDS + 1)

            [webhook] = receiver.wait_for(1)

            assert (
                gateway.parse_webhook(webhook.bt_signature, webhook.bt_payload).transaction_id
                == sale
            )
            [delivery] = httpx.get(f"{server.url}/_sandbox/webhooks").json()
            assert delivery["state"] == "delivered"
            assert [a.get("status_code") for a in delivery["attempts"]] == [500, 200]
            assert receiver.requests == 2
        finally:
            server.stop()


# --- verification ------------------------------------------------------------------------------
@pytest.fixture
def signed() -> ReceivedWebhook:
    """A webhook as Braintree's SDK itself builds one for the sandbox's keys (no network)."""
    sdk = braintree.BraintreeGateway(
        braintree.Configuration(
            environment=braintree.Environment.Sandbox,
            merchant_id=MERCHANT_ID,
            public_key=PUBLIC_KEY,
            private_key=PRIVATE_KEY,
        )
    )
    sample = sdk.webhook_testing.sample_notification(
        braintree.WebhookNotification.Kind.TransactionSettled, "abc123"
    )
    return ReceivedWebhook(
        "application/x-www-form-urlencoded",
        sample["bt_signature"],
        sample["bt_payload"].decode("ascii"),
    )


def test_the_sdks_own_sample_notification_verifies(
    gateway: BraintreeGateway, signed: ReceivedWebhook
) -> None:
    event = gateway.parse_webhook(signed.bt_signature, signed.bt_payload)

    assert event == WebhookEvent(
        kind="transaction_settled",
        transaction_id="abc123",
        transaction_status="settled",
        timestamp=event.timestamp,
    )


def tampered(webhook: ReceivedWebhook) -> tuple[str, str]:
    """The signed notification with its status changed, the signature left as it was."""
    document = base64.decodebytes(webhook.bt_payload.encode("ascii"))
    payload = base64.encodebytes(document.replace(b"settled", b"voided")).decode("ascii")
    return webhook.bt_signature, payload


def digest(webhook: ReceivedWebhook) -> str:
    return webhook.bt_signature.partition("|")[2]


Forgery = Callable[[ReceivedWebhook], tuple[str, str]]
FORGERIES: dict[str, Forgery] = {
    "tampered payload": tampered,
    "wrong signature": lambda w: (f"{PUBLIC_KEY}|{'0' * 40}", w.bt_payload),
    "another public key": lambda w: (f"other-public-key|{digest(w)}", w.bt_payload),
    "another notification": lambda w: (w.bt_signature, "bm90IHhtbA==\n"),
    "payload is not base64": lambda w: (w.bt_signature, "<notification/>"),
    "empty signature": lambda w: ("", w.bt_payload),
}


@pytest.mark.parametrize("forge", list(FORGERIES.values()), ids=list(FORGERIES))
def test_a_webhook_that_does_not_verify_is_refused(
    gateway: BraintreeGateway, signed: ReceivedWebhook, forge: Forgery
) -> None:
    signature, payload = forge(signed)

    with pytest.raises(InvalidWebhook):
        gateway.parse_webhook(signature, payload)


def test_a_signed_payload_that_is_not_a_notification_is_refused(
    gateway: BraintreeGateway,
) -> None:
    # Correctly signed (so only decoding can fail), but not a notification document.
    payload = base64.encodebytes(b"<something-else><a>1</a></something-else>").decode("ascii")

    with pytest.raises(InvalidWebhook):
        gateway.parse_webhook(sign_payload(PUBLIC_KEY, PRIVATE_KEY, payload), payload)
