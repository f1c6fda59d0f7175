"""Fraud detection end to end, on SQLite and PostgreSQL: every rule, the blocklist, the learned
score and the three ends of a review (approved: captured; declined: voided; no decision by
the deadline: voided), through the HTTP API, Temporal, the worker, the braintree SDK, the
sandbox, the database and Kafka.

The shared e2e stack raises the velocity thresholds out of reach (its checkout pays hundreds
of times as one user). These tests run an API and a worker of their own with the shipped
thresholds (and a 20-second review deadline) beside it, on its Temporal, Kafka and sandbox,
with a database and task queue of their own. Each test pays as users of its own with cards it
tokenizes at the sandbox (one card per test: velocity per payment method is platform-wide),
and writes earlier payments straight into the database where a rule needs history.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from devtools.events import EventReader
from devtools.postgres import create_postgres_database, drop_postgres_database
from devtools.processes import ProcessGroup
from devtools.stack import free_port
from payments.config import ApiSettings, DatabaseSettings, FraudSettings
from payments.db.database import Database
from payments.db.engine import create_db_engine
from payments.db.models import Payment
from payments.events.topics import PAYMENT_STATUS
from tests.e2e.conftest import Stack, start_beside

pytestmark = pytest.mark.e2e

MERCHANT = "dev-merchant"  # the development checkout key's
REVIEW_DEADLINE_SECONDS = 20.0


@dataclass(frozen=True)
class Card:
    number: str
    month: str
    year: str

    @classmethod
    def new(cls, number: str) -> Card:
        """A test card number with an expiry of its own: another card to the fingerprint
        (which is made of the BIN, the last four digits and the expiry)."""
        return cls(number, f"{random.randint(1, 12):02d}", str(random.randint(2030, 2099)))


@dataclass
class FraudStack:
    checkout: httpx.AsyncClient
    admin: httpx.AsyncClient
    db: Database
    sandbox_url: str

    async def card(self, card: Card | None = None) -> str:
        """A nonce for ``card``, tokenized at the sandbox as a checkout page does; by
        default a card of its own (a Visa with an expiry no other test uses)."""
        card = card or Card.new("4111111111111111")
        async with httpx.AsyncClient(base_url=self.sandbox_url, trust_env=False) as sandbox:
            tokenized = await sandbox.post(
                "/_sandbox/client/tokenize",
                json={
                    "number": card.number,
                    "expiration_month": card.month,
                    "expiration_year": card.year,
                    "cvv": "123",
                },
            )
        assert tokenized.status_code == 200, tokenized.text
        nonce: str = tokenized.json()["nonce"]
        return nonce

    async def pay(self, user_id: str, nonce: str, amount: str = "49.99") -> dict[str, Any]:
        response = await self.checkout.post(
            "/initiate-payment",
            json={
                "order_id": f"order-{uuid.uuid4().hex[:10]}",
                "user_id": user_id,
                "amount": amount,
                "currency": "USD",
                "payment_method": "credit_card",
                "payment_token": nonce,
            },
        )
        assert response.status_code == 202, response.text
        payment_id: str = response.json()["payment_id"]
        return await self.settled(payment_id)

    async def settled(self, payment_id: str, seconds: float = 30) -> dict[str, Any]:
        """The payment once its verdict is in and it is final or held for review."""
        deadline = time.monotonic() + seconds
        while True:
            body: dict[str, Any] = (await self.checkout.get(f"/payment/{payment_id}")).json()
            held = body["fraud"] is not None and body["fraud"]["decision"] == "review"
            if body["payment_status"] != "pending" or (held and body["transaction_id"]):
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"payment {payment_id} still {body}")
            await asyncio.sleep(0.2)

    async def settled_after_review(self, payment_id: str) -> dict[str, Any]:
        """The payment once final, past the review deadline."""
        deadline = time.monotonic() + REVIEW_DEADLINE_SECONDS + 30
        while True:
            body: dict[str, Any] = (await self.checkout.get(f"/payment/{payment_id}")).json()
            if body["payment_status"] != "pending":
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"payment {payment_id} still pending: {body}")
            await asyncio.sleep(0.5)

    def history(self, user_id: str, ago: list[timedelta], **columns: Any) -> None:
        """Earlier payments of ``user_id``, written as the API would have stored them."""
        now = datetime.now(UTC)
        rows = [
            {
                "payment_id": str(uuid.uuid4()),
                "merchant_id": MERCHANT,
                "order_id": f"earlier-{uuid.uuid4().hex[:10]}",
                "user_id": user_id,
                "amount": columns.get("amount", 1000),
                "currency": "USD",
                "payment_status": "success",
                "payment_method": "credit_card",
                "refunded_amount": 0,
                "retry_enabled": False,
                "attempts": 1,
                "payment_method_fingerprint": columns.get("fingerprint"),
                "created_at": now - delta,
                "updated_at": now - delta,
            }
            for delta in ago
        ]
        with self.db.payments._engine.begin() as connection:
            connection.execute(sa.insert(Payment.__table__), rows)  # type: ignore[attr-defined]

    def stored(self, payment_id: str) -> Payment:
        payment = self.db.payments.get(payment_id)
        assert payment is not None
        return payment


@pytest.fixture(scope="module")
def fraud_database(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if stack.settings.database.url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path_factory.mktemp('fraud-stack') / 'payments.db'}"
        return
    url, name = create_postgres_database("payments_fraud_e2e")
    try:
        yield url
    finally:
        drop_postgres_database(name)


@pytest.fixture(scope="module")
async def fraud(
    stack: Stack, fraud_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FraudStack]:
    data_dir = tmp_path_factory.mktemp("fraud-processes")
    settings = stack.settings.model_copy(
        update={
            "database": DatabaseSettings(url=fraud_database),
            "temporal": stack.settings.temporal.model_copy(
                update={"task_queue": "fraud-stack", "metrics_address": f"127.0.0.1:{free_port()}"}
            ),
            "api": ApiSettings(host="127.0.0.1", port=free_port(), rate_limit="2000/second"),
            "policy": stack.settings.policy.model_copy(
                update={"fraud": FraudSettings(review_deadline_seconds=REVIEW_DEADLINE_SECONDS)}
            ),
        }
    )
    api_url = f"http://127.0.0.1:{settings.api.port}"
    assert stack.endpoints.sandbox_url is not None
    engine = None
    try:
        with ProcessGroup(data_dir / "stack.log") as group:
            keys = await asyncio.to_thread(start_beside, group, settings, data_dir)
            engine = create_db_engine(DatabaseSettings(url=fraud_database))
            async with (
                httpx.AsyncClient(
                    base_url=api_url,
                    timeout=30,
                    trust_env=False,
                    headers={"Authorization": f"Bearer {keys['checkout']}"},
                ) as checkout,
                httpx.AsyncClient(
                    base_url=api_url,
                    timeout=30,
                    trust_env=False,
                    headers={"Authorization": f"Bearer {keys['admin']}"},
                ) as admin,
            ):
                yield FraudStack(checkout, admin, Database(engine), stack.endpoints.sandbox_url)
    finally:
        if engine is not None:
            engine.dispose()


def user() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


def rules(payment: dict[str, Any]) -> list[str]:
    return [reason["rule"] for reason in payment["fraud"]["reasons"]]


async def sandbox_status(stack: Stack, transaction_id: str) -> str:
    [found] = [t for t in await stack.sandbox_transactions() if t["id"] == transaction_id]
    status: str = found["status"]
    return status


MINUTES = [timedelta(minutes=m) for m in (1, 2, 3, 4, 5, 6, 7, 8, 9, 9.5)]
HOUR = [timedelta(minutes=20 + m) for m in range(30)]  # none in the last 10 minutes
DAY = [timedelta(hours=2, minutes=10 * m) for m in range(100)]  # none in the last hour


@pytest.mark.parametrize(
    ("rule", "earlier", "amount", "decision"),
    [
        # More than 10 payments in 10 minutes: review; more than 30: decline.
        ("velocity_user_10m", {"ago": MINUTES}, "49.99", "review"),
        ("velocity_user_10m", {"ago": MINUTES * 3}, "49.99", "decline"),
        # More than 30 in an hour.
        ("velocity_user_1h", {"ago": HOUR}, "49.99", "review"),
        # More than 100 in a day.
        ("velocity_user_24h", {"ago": DAY}, "49.99", "review"),
        # Above three times the single-payment cap (30000.00 USD) in a day.
        ("amount_user_24h", {"ago": [timedelta(hours=3)] * 3, "amount": 9000_00}, "3500.00",
         "review"),
        # A first payment above a quarter of the cap.
        ("new_user_large_payment", None, "3500.00", "review"),
        ("amount_limit", None, "10000.01", "decline"),
    ],
)  # fmt: skip
async def test_each_rule_decides(
    fraud: FraudStack,
    stack: Stack,
    rule: str,
    earlier: dict[str, Any] | None,
    amount: str,
    decision: str,
) -> None:
    payer = user()
    if earlier is not None:
        fraud.history(payer, **earlier)
    payment = await fraud.pay(payer, await fraud.card(), amount)
    assert payment["fraud"]["decision"] == decision, payment
    assert rules(payment)[0] == rule
    assert payment["fraud"]["reasons"][0]["message"]
    if decision == "decline":
        assert (payment["payment_status"], payment["failure_reason"]) == (
            "failure",
            "fraud_declined",
        )
        # Never charged: the gateway holds no sale for the order.
        assert await stack.sandbox_transactions(order_id=payment["order_id"]) == []
    else:
        assert payment["payment_status"] == "pending"
        assert await sandbox_status(stack, payment["transaction_id"]) == "authorized"
        await decide(fraud, payment["payment_id"], "decline")


async def decide(
    fraud: FraudStack, payment_id: str, decision: str, note: str = ""
) -> httpx.Response:
    response = await fraud.admin.post(
        f"/admin/payments/{payment_id}/review", json={"decision": decision, "note": note}
    )
    assert response.status_code == 200, response.text
    return response


async def test_the_same_payment_again_within_minutes_is_reviewed(fraud: FraudStack) -> None:
    payer, nonce = user(), await fraud.card()
    first = await fraud.pay(payer, nonce, "12.34")
    assert first["fraud"]["decision"] == "approve"
    again = await fraud.pay(payer, await fraud.card(), "12.34")
    assert (again["fraud"]["decision"], rules(again)) == ("review", ["repeat_payment"])
    await decide(fraud, again["payment_id"], "decline")


async def test_payment_method_velocity_and_sharing(fraud: FraudStack) -> None:
    card = Card.new("5555555555554444")
    first = await fraud.pay(user(), await fraud.card(card))
    assert first["fraud"]["decision"] == "approve"
    fingerprint = fraud.stored(first["payment_id"]).payment_method_fingerprint
    assert fingerprint is not None
    # Four more payments with the card within the hour, by four other users.
    for n in range(4):
        fraud.history(user(), [timedelta(minutes=5 + n)], fingerprint=fingerprint)
    payer = user()
    fraud.history(payer, [timedelta(days=10)])  # a user known for days
    # The same card again (a new nonce, the same number and expiry): its sixth payment in an
    # hour, for its sixth user in a day.
    sixth = await fraud.pay(payer, await fraud.card(card))
    assert fraud.stored(sixth["payment_id"]).payment_method_fingerprint == fingerprint
    assert sixth["fraud"]["decision"] == "review"
    assert rules(sixth) == ["velocity_fingerprint_1h", "fingerprint_many_users"]
    await decide(fraud, sixth["payment_id"], "decline")


@pytest.mark.parametrize("kind", ["user", "fingerprint", "bin"])
async def test_blocklisted_user_card_or_bin_is_declined_before_the_gateway(
    fraud: FraudStack, stack: Stack, kind: str
) -> None:
    payer, card = user(), Card.new("6011111111111117")  # Discover: BIN 601111
    first = await fraud.pay(payer, await fraud.card(card))
    assert first["payment_status"] == "success"
    value = {
        "user": payer,
        "fingerprint": fraud.stored(first["payment_id"]).payment_method_fingerprint,
        "bin": "601111",
    }[kind]
    listed = await fraud.admin.post(
        "/admin/blocklist", json={"kind": kind, "value": value, "reason": "chargebacks"}
    )
    assert listed.status_code == 201, listed.text
    try:
        declined = await fraud.pay(payer, await fraud.card(card))
        assert (declined["payment_status"], declined["failure_reason"]) == (
            "failure",
            "fraud_declined",
        )
        assert rules(declined)[0] == f"blocklist_{kind}"
        assert "blocklisted: chargebacks" in declined["failure_message"]
        assert await stack.sandbox_transactions(order_id=declined["order_id"]) == []
    finally:
        entry = listed.json()["entry_id"]
        assert (await fraud.admin.delete(f"/admin/blocklist/{entry}")).status_code == 204
    # Off the list: the same payer and card pay again.
    assert (await fraud.pay(payer, await fraud.card(card), "10.01"))["payment_status"] == "success"


async def test_the_learned_score_is_recorded_and_reads_the_risk(
    fraud: FraudStack, events: EventReader
) -> None:
    """The model's version and score on every verdict: a known user's small payment with a
    card of the currency's country scores below a brand-new user's large one with a card
    issued in Canada (documented sandbox nonces)."""
    known = user()
    fraud.history(known, [timedelta(days=d) for d in (20, 40, 60)])
    calm = await fraud.pay(known, "fake-valid-country-of-issuance-usa-nonce", "15.00")
    risky = await fraud.pay(user(), "fake-valid-country-of-issuance-cad-nonce", "1900.00")
    for payment in (calm, risky):
        assert payment["fraud"]["model_version"] == "fraud-model-v1"
        assert 0 <= payment["fraud"]["model_score"] <= 100
    assert risky["fraud"]["model_score"] > calm["fraud"]["model_score"]
    # Announced with the outcome, verdict included.
    [event] = await events.wait_for(PAYMENT_STATUS, payment_id=calm["payment_id"], status="success")
    assert event["fraud"]["model_version"] == "fraud-model-v1"
    assert event["fraud"]["decision"] == "approve"


async def held_payment(fraud: FraudStack) -> dict[str, Any]:
    """A payment the rules send to review: a new user's first payment of 3500.00."""
    payment = await fraud.pay(user(), await fraud.card(), "3500.00")
    assert payment["fraud"]["decision"] == "review" and payment["payment_status"] == "pending"
    return payment


async def test_review_approved_is_captured(
    fraud: FraudStack, stack: Stack, events: EventReader
) -> None:
    payment = await held_payment(fraud)
    queue = (await fraud.admin.get("/admin/reviews")).json()["items"]
    [listed] = [p for p in queue if p["payment_id"] == payment["payment_id"]]
    assert listed["review_deadline_at"] and listed["card_bin"] == "411111"
    approved = await decide(fraud, payment["payment_id"], "approve", "customer called")
    assert approved.json()["payment_status"] == "success"
    assert await sandbox_status(stack, payment["transaction_id"]) in {
        "submitted_for_settlement",
        "settling",
        "settled",
    }
    queue = (await fraud.admin.get("/admin/reviews")).json()["items"]
    assert payment["payment_id"] not in [p["payment_id"] for p in queue]
    trail = (await fraud.checkout.get(f"/payment/{payment['payment_id']}/events")).json()
    causes = [(e["cause"], e["detail"]) for e in trail["items"]]
    assert any(cause == "fraud_check" for cause, _ in causes)
    assert any(
        cause == "review:approve" and "customer called" in (detail or "")
        for cause, detail in causes
    )
    [event] = await events.wait_for(
        PAYMENT_STATUS, payment_id=payment["payment_id"], status="success"
    )
    assert event["fraud"]["decision"] == "review"
    # Decided already: a second decision is a conflict.
    again = await fraud.admin.post(
        f"/admin/payments/{payment['payment_id']}/review", json={"decision": "decline"}
    )
    assert again.status_code == 409, again.text


async def test_review_declined_is_voided(fraud: FraudStack, stack: Stack) -> None:
    payment = await held_payment(fraud)
    declined = (await decide(fraud, payment["payment_id"], "decline", "stolen card")).json()
    assert (declined["payment_status"], declined["failure_reason"]) == (
        "failure",
        "fraud_declined",
    )
    assert declined["failure_message"] == "declined in review: stolen card"
    assert await sandbox_status(stack, payment["transaction_id"]) == "voided"


async def test_no_decision_by_the_deadline_voids(fraud: FraudStack, stack: Stack) -> None:
    payment = await held_payment(fraud)
    final = await fraud.settled_after_review(payment["payment_id"])
    assert (final["payment_status"], final["failure_reason"]) == ("failure", "fraud_declined")
    assert "deadline" in final["failure_message"]
    assert await sandbox_status(stack, payment["transaction_id"]) == "voided"


async def test_a_payment_not_held_cannot_be_reviewed(fraud: FraudStack) -> None:
    paid = await fraud.pay(user(), await fraud.card())
    assert paid["payment_status"] == "success"
    response = await fraud.admin.post(
        f"/admin/payments/{paid['payment_id']}/review", json={"decision": "approve"}
    )
    assert response.status_code == 409, response.text


async def test_a_checkout_waiting_for_the_answer_learns_the_payment_is_held(
    fraud: FraudStack,
) -> None:
    """Prefer: wait answers at once when the payment is held, with the verdict."""
    response = await fraud.checkout.post(
        "/initiate-payment",
        headers={"Prefer": "wait=5"},
        json={
            "order_id": f"order-{uuid.uuid4().hex[:10]}",
            "user_id": user(),
            "amount": "3500.00",
            "currency": "USD",
            "payment_method": "credit_card",
            "payment_token": await fraud.card(),
        },
    )
    assert response.status_code == 202, response.text
    held = response.json()
    assert held["payment_status"] == "pending"
    assert held["fraud"]["decision"] == "review"
    assert [r["rule"] for r in held["fraud"]["reasons"]] == ["new_user_large_payment"]
    await decide(fraud, held["payment_id"], "decline")
