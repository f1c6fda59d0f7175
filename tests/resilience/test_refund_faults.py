"""Refunds while the gateway fails: error statuses and dropped connections before it did
anything, and lost, mangled or late answers after the void or the refund took effect.

Proves: each processed refund gave the money back exactly once at the gateway — one void of
the sale, or one credit carrying the refund's request key for the refund's amount — and a
refund the gateway refused gave nothing back; the payment's refunded amount says the same.

The sandbox of this stack settles nothing by itself: the test settles the sales it wants
refunded (Braintree's testing API), so whether a refund voids or credits is decided by the
test, not by the clock. Kinds of refund:
- the whole payment before settlement: a void;
- after settlement, a part and then the rest: two credits;
- refused: the gateway had already refunded the whole sale (by someone else, straight at the
  gateway), so the service's refund is refused: it fails and gives nothing back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from devtools.sandbox.settings import SandboxSettings
from payments.gateway.braintree_gateway import build_braintree_gateway
from payments.money import Money
from tests.resilience.support import (
    ResilienceStack,
    initiate,
    payment_body,
    running_stack,
    wait_all_terminal,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VOIDED, REFUNDED, REFUSED = 4, 4, 2
# Longer than the gateway's timeout (10 s): the answer comes after the client gave up.
LATE_SECONDS = 11.0
FAULTS: list[dict[str, Any]] = [
    # Refused before the gateway did anything: the retry must void or credit.
    {"operation": "void", "kind": "status", "status_code": 503, "times": 2},
    {"operation": "void", "kind": "drop", "times": 1},
    {"operation": "refund", "kind": "status", "status_code": 503, "times": 2},
    {"operation": "refund", "kind": "drop", "times": 1},
    {"operation": "find", "kind": "status", "status_code": 503, "times": 2},
    # Done, only the answer was lost, mangled or late: the retry must NOT do it again.
    {"operation": "void", "kind": "status", "status_code": 502, "after_processing": True},
    {"operation": "void", "kind": "malformed", "after_processing": True},
    {"operation": "void", "kind": "drop", "after_processing": True},
    {"operation": "refund", "kind": "status", "status_code": 502, "after_processing": True},
    {"operation": "refund", "kind": "malformed", "after_processing": True},
    {"operation": "refund", "kind": "drop", "after_processing": True},
    {
        "operation": "refund",
        "kind": "delay",
        "delay_seconds": LATE_SECONDS,
        "after_processing": True,
    },
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResilienceStack]:
    never = 24 * 3600.0
    sandbox = SandboxSettings(settle_after_seconds=never, bank_settle_after_seconds=never)
    with running_stack(tmp_path_factory.mktemp("refund-faults"), sandbox=sandbox) as running:
        yield running


def sandbox_client(stack: ResilienceStack) -> httpx.AsyncClient:
    assert stack.endpoints.sandbox_url is not None
    return httpx.AsyncClient(base_url=stack.endpoints.sandbox_url, timeout=30, trust_env=False)


async def settle(stack: ResilienceStack, transaction_id: str) -> None:
    """Braintree's testing API (sandbox only): the sale is settled now."""
    gateway = stack.settings.gateway
    async with sandbox_client(stack) as sandbox:
        response = await sandbox.put(
            f"/merchants/{gateway.merchant_id}/transactions/{transaction_id}/settle",
            auth=(gateway.public_key, gateway.private_key.get_secret_value()),
            headers={"X-ApiVersion": "6", "Accept": "application/xml"},
        )
    assert response.status_code == 200, response.text


async def refund_elsewhere(stack: ResilienceStack, transaction_id: str, amount: Money) -> str:
    """A refund of the whole sale made straight at the gateway, not through the service (a
    merchant's back office, say); returns the credit's id."""
    gateway = build_braintree_gateway(stack.settings.gateway)
    outcome = await asyncio.to_thread(
        lambda: gateway.refund(
            request_key=f"elsewhere-{uuid.uuid4()}", transaction_id=transaction_id, amount=amount
        )
    )
    assert outcome.succeeded and outcome.transaction is not None, outcome
    return outcome.transaction.transaction_id


async def ask_refund(api: httpx.AsyncClient, payment_id: str, amount: str | None) -> str:
    body: dict[str, Any] = {"payment_id": payment_id, "reason": "returned"}
    if amount is not None:
        body["amount"] = amount
    response = await api.post("/refund", json=body)
    assert response.status_code == 202, response.text
    refund_id: str = response.json()["refund_id"]
    return refund_id


async def wait_refunds(
    api: httpx.AsyncClient, refund_ids: list[str], *, seconds: float
) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + seconds
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(refund_ids):
        for refund_id in refund_ids:
            if refund_id in done:
                continue
            body: dict[str, Any] = (await api.get(f"/refund/{refund_id}")).json()
            if body["refund_status"] in ("processed", "failed"):
                done[refund_id] = body
        assert time.monotonic() < deadline, f"refunds not done after {seconds:g} s: {done}"
        await asyncio.sleep(0.5)
    return done


async def test_refunds_under_gateway_faults_give_back_exactly_once(
    stack: ResilienceStack,
) -> None:
    async with stack.api_client() as api:
        accepted = [
            await initiate(api, payment_body(amount=f"{30 + i}.00"))
            for i in range(VOIDED + REFUNDED + REFUSED)
        ]
        paid = await wait_all_terminal(api, (p["payment_id"] for p in accepted), seconds=60)
        payments = [paid[p["payment_id"]] for p in accepted]
        assert {p["payment_status"] for p in payments} == {"success"}, payments
        voided = payments[:VOIDED]
        refunded = payments[VOIDED : VOIDED + REFUNDED]
        refused = payments[VOIDED + REFUNDED :]
        for payment in [*refunded, *refused]:
            await settle(stack, payment["transaction_id"])
        elsewhere = {
            p["payment_id"]: await refund_elsewhere(
                stack, p["transaction_id"], Money.parse(p["amount"], p["currency"])
            )
            for p in refused
        }

        async with sandbox_client(stack) as sandbox:
            for fault in FAULTS:
                (await sandbox.post("/_sandbox/faults", json=fault)).raise_for_status()
            try:
                # What each refund should give back at the gateway: (payment, amount, method).
                asked: dict[str, tuple[dict[str, Any], str, str]] = {}
                for payment in voided:
                    refund_id = await ask_refund(api, payment["payment_id"], None)
                    asked[refund_id] = (payment, payment["amount"], "void")
                for payment in refunded:
                    part = await ask_refund(api, payment["payment_id"], "10.00")
                    rest = await ask_refund(api, payment["payment_id"], None)
                    rest_amount = f"{Decimal(payment['amount']) - Decimal('10.00'):.2f}"
                    asked[part] = (payment, "10.00", "refund")
                    asked[rest] = (payment, rest_amount, "refund")
                for payment in refused:
                    refund_id = await ask_refund(api, payment["payment_id"], "5.00")
                    asked[refund_id] = (payment, "5.00", "refused")
                done = await wait_refunds(api, list(asked), seconds=240)
                left = (await sandbox.get("/_sandbox/faults")).json()
            finally:
                await sandbox.delete("/_sandbox/faults")
        assert left == [], "every injected fault was hit"

        async with sandbox_client(stack) as sandbox:
            held: list[dict[str, Any]] = (await sandbox.get("/_sandbox/transactions")).json()
        by_id = {t["id"]: t for t in held}
        for refund_id, (payment, amount, expected) in asked.items():
            refund = done[refund_id]
            sale = by_id[payment["transaction_id"]]
            credits = [t for t in held if t["refunded_transaction_id"] == sale["id"]]
            mine = [t for t in credits if t["request_key"] == f"refund-{refund_id}"]
            if expected == "void":
                assert (refund["refund_status"], refund["method"]) == ("processed", "void")
                assert sale["status"] == "voided"
                assert credits == []
            elif expected == "refund":
                assert (refund["refund_status"], refund["method"]) == ("processed", "refund")
                assert [(t["type"], t["amount"]) for t in mine] == [("credit", amount)], credits
                assert sale["status"] == "settled"
            else:
                assert (refund["refund_status"], refund["failure_reason"]) == (
                    "failed",
                    "gateway_refused",
                ), refund
                assert mine == []
                assert [t["id"] for t in credits] == [elsewhere[payment["payment_id"]]]

        # The payments agree with the gateway: everything back, or nothing through us.
        for payment in payments:
            stored = (await api.get(f"/payment/{payment['payment_id']}")).json()
            expected_back = "0.00" if payment in refused else payment["amount"]
            assert stored["refunded_amount"] == expected_back, stored
        for payment in refunded:
            credits = [t for t in held if t["refunded_transaction_id"] == payment["transaction_id"]]
            assert len(credits) == 2, credits
    stack.assert_no_crash()
