"""What the gateway tests say again and again: a fresh request key, USD amounts, refunding a
whole sale, and a gateway on a sandbox of its own for waiting out settlement in real time."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from payments.gateway.braintree_gateway import BraintreeGateway, build_braintree_gateway
from payments.gateway.types import ReversalOutcome
from payments.money import Money
from tests.gateway.support import BANK_SETTLE_AFTER_SECONDS, gateway_settings, start_sandbox


def new_key() -> str:
    return f"key-{uuid.uuid4().hex}"


def usd(amount: str) -> Money:
    return Money.parse(amount, "USD")


def refund_whole(gateway: BraintreeGateway, sale_id: str) -> ReversalOutcome:
    return gateway.refund(request_key=new_key(), transaction_id=sale_id, amount=None)


@contextmanager
def gateway_on_own_sandbox(
    settle_after_seconds: float, bank_settle_after_seconds: float = BANK_SETTLE_AFTER_SECONDS
) -> Iterator[BraintreeGateway]:
    """A gateway on a sandbox started for the one test (its settlement delays are short and
    real: the session's sandbox settles only when its clock is moved), stopped after it."""
    server = start_sandbox(
        settle_after_seconds, bank_settle_after_seconds=bank_settle_after_seconds
    )
    try:
        yield build_braintree_gateway(gateway_settings(server.port))
    finally:
        server.stop()


def status_after(gateway: BraintreeGateway, sale_id: str, started: float, seconds: float) -> str:
    """The sale's status once ``seconds`` have passed since ``started`` (time.monotonic)."""
    time.sleep(max(0.0, started + seconds - time.monotonic()))
    return gateway.find(sale_id).status
