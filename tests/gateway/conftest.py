"""A sandbox server on a free local port, and the real adapter (braintree SDK over HTTP) to it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from devtools.serving import BackgroundServer
from payments.gateway.braintree_gateway import BraintreeGateway, build_braintree_gateway
from payments.gateway.types import PaymentGateway
from tests.gateway.support import SETTLE_AFTER_SECONDS, ManualClock, gateway_settings, start_sandbox


@pytest.fixture(scope="session")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="session")
def sandbox(clock: ManualClock) -> Iterator[BackgroundServer]:
    server = start_sandbox(SETTLE_AFTER_SECONDS, clock)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gateway(sandbox: BackgroundServer) -> BraintreeGateway:
    return build_braintree_gateway(gateway_settings(sandbox.port))


def _implements_the_protocol(adapter: BraintreeGateway) -> PaymentGateway:
    """Never called: mypy checks here that the adapter implements all of PaymentGateway."""
    return adapter


@pytest.fixture(scope="session")
def admin(sandbox: BackgroundServer) -> Iterator[httpx.Client]:
    """The sandbox's own JSON endpoints (not Braintree's API): to look, and to inject faults."""
    with httpx.Client(base_url=sandbox.url, timeout=5) as client:
        yield client


@pytest.fixture(autouse=True)
def _no_leftover_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "admin" in request.fixturenames:
        request.getfixturevalue("admin").delete("/_sandbox/faults")


@pytest.fixture
def order_id() -> str:
    return f"order-{uuid.uuid4().hex[:12]}"
