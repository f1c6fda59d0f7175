"""The repositories' invariants on SQLite and PostgreSQL (migrated by Alembic)."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from payments.contracts import PaymentOutcome, RefundOutcome
from payments.db import columns
from payments.db.database import Database
from payments.db.models import Payment, Refund, Role, utcnow
from payments.db.repositories.idempotency import IdempotencyClaim
from payments.errors import (
    IdempotencyKeyReused,
    InvalidRequest,
    InvalidTransition,
    NotFound,
    RefundExceedsRemainder,
    RefundNotAllowed,
)
from tests.support.rows import refund_row

DEFAULT = "default"  # created by the migration


@pytest.fixture
def db(engine: sa.Engine) -> Database:
    return Database(engine)


def new_payment(amount: int = 4999, **fields: str) -> Payment:
    return Payment(
        payment_id=str(uuid.uuid4()),
        merchant_id=fields.get("merchant_id", DEFAULT),
        order_id=fields.get("order_id", f"order-{uuid.uuid4().hex[:8]}"),
        user_id=fields.get("user_id", "user-1"),
        amount=amount,
        currency="USD",
        payment_method="credit_card",
        idempotency_key=fields.get("idempotency_key"),
        request_fingerprint=fields.get("fingerprint"),
    )


def paid(db: Database, amount: int = 4999) -> Payment:
    payment, _ = db.payments.insert(new_payment(amount))
    return db.payments.complete(
        PaymentOutcome(payment.payment_id, succeeded=True, transaction_id="tx-1")
    )


def new_refund(payment: Payment, amount: int, key: str | None = None) -> Refund:
    return refund_row(
        payment, amount, idempotency_key=key, request_fingerprint="f" if key else None
    )


def test_state_machine(db: Database) -> None:
    payment, created = db.payments.insert(new_payment())
    assert created and payment.payment_status == "pending"
    done = db.payments.complete(
        PaymentOutcome(payment.payment_id, succeeded=False, failure_reason="processor_declined")
    )
    assert done.payment_status == "failure"
    # Repeating the same transition is a no-op (activities are retried) ...
    again = db.payments.complete(PaymentOutcome(payment.payment_id, succeeded=False))
    assert again.failure_reason == "processor_declined"
    # ... but a terminal payment never changes its outcome.
    with pytest.raises(InvalidTransition):
        db.payments.complete(PaymentOutcome(payment.payment_id, succeeded=True))


def claim(
    key: str, fingerprint: str = "a", merchant: str = DEFAULT, ttl: float = 3600.0
) -> IdempotencyClaim:
    return IdempotencyClaim(merchant_id=merchant, key=key, fingerprint=fingerprint, ttl_seconds=ttl)


def test_idempotency_key(db: Database) -> None:
    key = f"key-{uuid.uuid4()}"
    assert db.payments.by_idempotency_key(claim(key)) is None
    first, created = db.payments.insert(new_payment(), idempotency=claim(key))
    assert created
    found = db.payments.by_idempotency_key(claim(key))
    assert found is not None and found.payment_id == first.payment_id
    # A request that raced the first one past the lookup gets the first payment back.
    second, created = db.payments.insert(new_payment(), idempotency=claim(key))
    assert not created and second.payment_id == first.payment_id
    with pytest.raises(IdempotencyKeyReused):
        db.payments.by_idempotency_key(claim(key, fingerprint="b"))


def test_idempotency_keys_belong_to_their_merchant(db: Database) -> None:
    other = f"m-{uuid.uuid4().hex[:8]}"
    db.access.ensure_merchant(other)
    key = f"key-{uuid.uuid4()}"
    mine, _ = db.payments.insert(new_payment(), idempotency=claim(key))
    theirs, created = db.payments.insert(
        new_payment(merchant_id=other), idempotency=claim(key, fingerprint="other", merchant=other)
    )
    assert created and theirs.payment_id != mine.payment_id


def test_an_expired_key_starts_something_new(db: Database) -> None:
    key = f"key-{uuid.uuid4()}"
    first, _ = db.payments.insert(new_payment(), idempotency=claim(key, ttl=0.2))
    time.sleep(0.3)
    assert db.payments.by_idempotency_key(claim(key, fingerprint="new")) is None
    second, created = db.payments.insert(new_payment(), idempotency=claim(key, fingerprint="new"))
    assert created and second.payment_id != first.payment_id
    # The key now names the second payment, until it expires in its turn.
    found = db.payments.by_idempotency_key(claim(key, fingerprint="new"))
    assert found is not None and found.payment_id == second.payment_id


def test_a_discarded_payment_frees_its_key(db: Database) -> None:
    key = f"key-{uuid.uuid4()}"
    first, _ = db.payments.insert(new_payment(), idempotency=claim(key))
    db.payments.discard_unstarted(first.payment_id)
    assert db.payments.get(first.payment_id) is None
    assert db.payments.by_idempotency_key(claim(key)) is None


def test_refund_idempotency_key(db: Database) -> None:
    payment = paid(db, 4999)
    key = f"key-{uuid.uuid4()}"
    first, created = db.refunds.reserve(
        new_refund(payment, 100), whole_remainder=False, idempotency=claim(key)
    )
    assert created
    again, created = db.refunds.reserve(
        new_refund(payment, 100), whole_remainder=False, idempotency=claim(key)
    )
    assert not created and again.refund_id == first.refund_id
    found = db.refunds.by_idempotency_key(claim(key))
    assert found is not None and found.refund_id == first.refund_id
    assert db.refunds.remainder(payment.payment_id) == 4899


def test_a_refund_names_its_payments_merchant(db: Database) -> None:
    payment = paid(db, 4999)
    other = f"m-{uuid.uuid4().hex[:8]}"
    db.access.ensure_merchant(other)
    foreign = new_refund(payment, 100)
    foreign.merchant_id = other
    with pytest.raises(NotFound):
        db.refunds.reserve(foreign, whole_remainder=False)


def test_lists_are_per_merchant(db: Database) -> None:
    other = f"m-{uuid.uuid4().hex[:8]}"
    db.access.ensure_merchant(other)
    user = f"user-{uuid.uuid4().hex[:6]}"
    db.payments.insert(new_payment(user_id=user))
    theirs, _ = db.payments.insert(new_payment(user_id=user, merchant_id=other))
    page = db.payments.page(merchant_id=other, user_id=user)
    assert [p.payment_id for p in page.items] == [theirs.payment_id]
    assert len(db.payments.page(user_id=user).items) == 2  # an admin sees both


def test_api_keys(db: Database) -> None:
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    assert not db.access.merchant_exists(merchant)
    key, secret = db.access.create_key(role=Role.CHECKOUT, merchant_id=merchant, created_by=None)
    assert db.access.merchant_exists(merchant)  # the first key naming a merchant creates it
    assert secret.secret.startswith("psk_") and secret.secret_hash == key.secret_hash
    assert secret.secret not in key.secret_hash
    principal = db.access.authenticate(secret.secret)
    assert principal is not None
    assert (principal.key_id, principal.role, principal.merchant_id) == (
        key.key_id,
        Role.CHECKOUT,
        merchant,
    )
    # A second key of the same merchant, and a guessed or altered secret.
    db.access.create_key(role=Role.CHECKOUT, merchant_id=merchant, created_by=key.key_id)
    altered = secret.secret[:-1] + ("A" if secret.secret[-1] != "A" else "B")
    assert db.access.authenticate(altered) is None
    assert db.access.authenticate("not-a-key") is None
    assert db.access.revoke(key.key_id) is not None
    assert db.access.authenticate(secret.secret) is None  # at once
    assert db.access.revoke("key_000000000000") is None
    active = [k.key_id for k in db.access.list_keys(merchant) if k.revoked_at is None]
    assert len(active) == 1 and key.key_id not in active


def test_webhook_receipts(db: Database) -> None:
    digest = uuid.uuid4().hex
    keep_after = utcnow() - timedelta(minutes=10)
    assert db.webhook_receipts.record(digest, "check", keep_after=keep_after)
    assert not db.webhook_receipts.record(digest, "check", keep_after=keep_after)


def test_refund_cap_and_remainder(db: Database) -> None:
    payment = paid(db, 4999)
    first, _ = db.refunds.reserve(new_refund(payment, 1000), whole_remainder=False)
    with pytest.raises(RefundExceedsRemainder):
        db.refunds.reserve(new_refund(payment, 4000), whole_remainder=False)
    rest, _ = db.refunds.reserve(new_refund(payment, 1), whole_remainder=True)
    assert rest.amount == 3999
    with pytest.raises(RefundNotAllowed):
        db.refunds.reserve(new_refund(payment, 1), whole_remainder=False)
    # A failed refund gives its amount back to the remainder.
    db.refunds.complete(RefundOutcome(rest.refund_id, succeeded=False, failure_reason="x"))
    assert db.refunds.remainder(payment.payment_id) == 3999
    _, stored = db.refunds.complete(RefundOutcome(first.refund_id, succeeded=True))
    assert stored.refunded_amount == 1000
    # Processing twice (a retried activity) does not count twice.
    _, stored = db.refunds.complete(RefundOutcome(first.refund_id, succeeded=True))
    assert stored.refunded_amount == 1000


def test_refund_of_unpaid_payment_is_refused(db: Database) -> None:
    pending, _ = db.payments.insert(new_payment())
    with pytest.raises(RefundNotAllowed, match="pending"):
        db.refunds.reserve(new_refund(pending, 100), whole_remainder=False)


def test_concurrent_refunds_never_exceed_the_payment(db: Database) -> None:
    payment = paid(db, 4999)

    def attempt(_: int) -> str:
        try:
            db.refunds.reserve(new_refund(payment, 1000), whole_remainder=False)
            return "reserved"
        except RefundNotAllowed:
            return "refused"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(attempt, range(20)))
    assert outcomes.count("reserved") == 4
    assert db.refunds.remainder(payment.payment_id) == 999


def test_listing_is_newest_first_with_cursor(db: Database) -> None:
    user = f"user-{uuid.uuid4().hex[:6]}"
    ids = [db.payments.insert(new_payment(user_id=user))[0].payment_id for _ in range(5)]
    page = db.payments.page(user_id=user, limit=2)
    seen = [p.payment_id for p in page.items]
    while page.next_cursor:
        page = db.payments.page(user_id=user, limit=2, cursor=page.next_cursor)
        seen += [p.payment_id for p in page.items]
    assert seen == list(reversed(ids))
    with pytest.raises(InvalidRequest):
        db.payments.page(cursor="not-a-cursor")


def test_a_refused_refund_keeps_the_start_of_a_long_gateway_message(db: Database) -> None:
    payment = paid(db, 4999)
    refund, _ = db.refunds.reserve(new_refund(payment, 1000), whole_remainder=False)
    # RefundWorkflow puts the gateway's code before its message, which the adapter already
    # cut to the column's width.
    gateway_message = "Refund amount is too large. " + "x" * (columns.FAILURE_MESSAGE - 28)
    told = f"91521: {gateway_message}"

    stored, _ = db.refunds.complete(
        RefundOutcome(
            refund.refund_id,
            succeeded=False,
            failure_reason="gateway_refused",
            failure_message=told,
        )
    )

    assert stored.failure_message == told[: columns.FAILURE_MESSAGE]
    again = db.refunds.get(refund.refund_id)
    assert again is not None and again.failure_message == told[: columns.FAILURE_MESSAGE]


def test_the_refunds_a_settlement_webhook_wakes(db: Database) -> None:
    payment = paid(db)
    waiting, _ = db.refunds.reserve(new_refund(payment, 100), whole_remainder=False)
    done, _ = db.refunds.reserve(new_refund(payment, 200), whole_remainder=False)
    db.refunds.complete(RefundOutcome(done.refund_id, succeeded=False, failure_reason="x"))
    assert db.refunds.initiated_ids(payment.payment_id) == [waiting.refund_id]
    assert db.refunds.initiated_ids("no-such-payment") == []
