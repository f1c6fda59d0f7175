"""The repository's invariants on SQLite and PostgreSQL (migrated by Alembic)."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from payments.db.access import AccessRepository
from payments.db.models import Payment, Refund, Role, utcnow
from payments.db.repository import IdempotencyClaim, PaymentRepository
from payments.errors import (
    IdempotencyKeyReused,
    InvalidRequest,
    InvalidTransition,
    NotFound,
    RefundExceedsRemainder,
    RefundNotAllowed,
)
from payments.vocabulary import PaymentStatus, RefundStatus

DEFAULT = "default"  # created by the migration


@pytest.fixture
def repository(engine: sa.Engine) -> PaymentRepository:
    return PaymentRepository(engine)


@pytest.fixture
def access(engine: sa.Engine) -> AccessRepository:
    return AccessRepository(engine)


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


def paid(repository: PaymentRepository, amount: int = 4999) -> Payment:
    payment, _ = repository.insert_payment(new_payment(amount))
    return repository.complete_payment(
        payment.payment_id, PaymentStatus.SUCCESS, transaction_id="tx-1"
    )


def new_refund(payment: Payment, amount: int, key: str | None = None) -> Refund:
    return Refund(
        refund_id=str(uuid.uuid4()),
        merchant_id=payment.merchant_id,
        payment_id=payment.payment_id,
        amount=amount,
        currency=payment.currency,
        reason="test",
        idempotency_key=key,
        request_fingerprint="f" if key else None,
    )


def test_state_machine(repository: PaymentRepository) -> None:
    payment, created = repository.insert_payment(new_payment())
    assert created and payment.payment_status == "pending"
    done = repository.complete_payment(
        payment.payment_id, PaymentStatus.FAILURE, failure_reason="processor_declined"
    )
    assert done.payment_status == "failure"
    # Repeating the same transition is a no-op (activities are retried) ...
    again = repository.complete_payment(payment.payment_id, PaymentStatus.FAILURE)
    assert again.failure_reason == "processor_declined"
    # ... but a terminal payment never changes its outcome.
    with pytest.raises(InvalidTransition):
        repository.complete_payment(payment.payment_id, PaymentStatus.SUCCESS)


def claim(
    key: str, fingerprint: str = "a", merchant: str = DEFAULT, ttl: float = 3600.0
) -> IdempotencyClaim:
    return IdempotencyClaim(merchant_id=merchant, key=key, fingerprint=fingerprint, ttl_seconds=ttl)


def test_idempotency_key(repository: PaymentRepository) -> None:
    key = f"key-{uuid.uuid4()}"
    assert repository.idempotent_payment(claim(key)) is None
    first, created = repository.insert_payment(new_payment(), idempotency=claim(key))
    assert created
    found = repository.idempotent_payment(claim(key))
    assert found is not None and found.payment_id == first.payment_id
    # A request that raced the first one past the lookup gets the first payment back.
    second, created = repository.insert_payment(new_payment(), idempotency=claim(key))
    assert not created and second.payment_id == first.payment_id
    with pytest.raises(IdempotencyKeyReused):
        repository.idempotent_payment(claim(key, fingerprint="b"))


def test_idempotency_keys_belong_to_their_merchant(
    repository: PaymentRepository, access: AccessRepository
) -> None:
    other = f"m-{uuid.uuid4().hex[:8]}"
    access.ensure_merchant(other)
    key = f"key-{uuid.uuid4()}"
    mine, _ = repository.insert_payment(new_payment(), idempotency=claim(key))
    theirs, created = repository.insert_payment(
        new_payment(merchant_id=other), idempotency=claim(key, fingerprint="other", merchant=other)
    )
    assert created and theirs.payment_id != mine.payment_id


def test_an_expired_key_starts_something_new(repository: PaymentRepository) -> None:
    key = f"key-{uuid.uuid4()}"
    first, _ = repository.insert_payment(new_payment(), idempotency=claim(key, ttl=0.2))
    time.sleep(0.3)
    assert repository.idempotent_payment(claim(key, fingerprint="new")) is None
    second, created = repository.insert_payment(
        new_payment(), idempotency=claim(key, fingerprint="new")
    )
    assert created and second.payment_id != first.payment_id
    # The key now names the second payment, until it expires in its turn.
    found = repository.idempotent_payment(claim(key, fingerprint="new"))
    assert found is not None and found.payment_id == second.payment_id


def test_a_discarded_payment_frees_its_key(repository: PaymentRepository) -> None:
    key = f"key-{uuid.uuid4()}"
    first, _ = repository.insert_payment(new_payment(), idempotency=claim(key))
    repository.discard_unstarted_payment(first.payment_id)
    assert repository.get_payment(first.payment_id) is None
    assert repository.idempotent_payment(claim(key)) is None


def test_refund_idempotency_key(repository: PaymentRepository) -> None:
    payment = paid(repository, 4999)
    key = f"key-{uuid.uuid4()}"
    first, created = repository.reserve_refund(
        new_refund(payment, 100), whole_remainder=False, idempotency=claim(key)
    )
    assert created
    again, created = repository.reserve_refund(
        new_refund(payment, 100), whole_remainder=False, idempotency=claim(key)
    )
    assert not created and again.refund_id == first.refund_id
    found = repository.idempotent_refund(claim(key))
    assert found is not None and found.refund_id == first.refund_id
    assert repository.refundable_remainder(payment.payment_id) == 4899


def test_a_refund_names_its_payments_merchant(
    repository: PaymentRepository, access: AccessRepository
) -> None:
    payment = paid(repository, 4999)
    other = f"m-{uuid.uuid4().hex[:8]}"
    access.ensure_merchant(other)
    foreign = new_refund(payment, 100)
    foreign.merchant_id = other
    with pytest.raises(NotFound):
        repository.reserve_refund(foreign, whole_remainder=False)


def test_lists_are_per_merchant(repository: PaymentRepository, access: AccessRepository) -> None:
    other = f"m-{uuid.uuid4().hex[:8]}"
    access.ensure_merchant(other)
    user = f"user-{uuid.uuid4().hex[:6]}"
    repository.insert_payment(new_payment(user_id=user))
    theirs, _ = repository.insert_payment(new_payment(user_id=user, merchant_id=other))
    page = repository.list_payments(merchant_id=other, user_id=user)
    assert [p.payment_id for p in page.items] == [theirs.payment_id]
    assert len(repository.list_payments(user_id=user).items) == 2  # an admin sees both


def test_api_keys(access: AccessRepository) -> None:
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    assert not access.merchant_exists(merchant)
    key, secret = access.create_key(role=Role.CHECKOUT, merchant_id=merchant, created_by=None)
    assert access.merchant_exists(merchant)  # the first key naming a merchant creates it
    assert secret.secret.startswith("psk_") and secret.secret_hash == key.secret_hash
    assert secret.secret not in key.secret_hash
    principal = access.authenticate(secret.secret)
    assert principal is not None
    assert (principal.key_id, principal.role, principal.merchant_id) == (
        key.key_id,
        Role.CHECKOUT,
        merchant,
    )
    # A second key of the same merchant, and a guessed or altered secret.
    access.create_key(role=Role.CHECKOUT, merchant_id=merchant, created_by=key.key_id)
    altered = secret.secret[:-1] + ("A" if secret.secret[-1] != "A" else "B")
    assert access.authenticate(altered) is None
    assert access.authenticate("not-a-key") is None
    assert access.revoke(key.key_id) is not None
    assert access.authenticate(secret.secret) is None  # at once
    assert access.revoke("key_000000000000") is None
    active = [k.key_id for k in access.list_keys(merchant) if k.revoked_at is None]
    assert len(active) == 1 and key.key_id not in active


def test_webhook_receipts(repository: PaymentRepository) -> None:
    digest = uuid.uuid4().hex
    keep_after = utcnow() - timedelta(minutes=10)
    assert repository.first_receipt(digest, "check", keep_after=keep_after)
    assert not repository.first_receipt(digest, "check", keep_after=keep_after)


def test_refund_cap_and_remainder(repository: PaymentRepository) -> None:
    payment = paid(repository, 4999)
    first, _ = repository.reserve_refund(new_refund(payment, 1000), whole_remainder=False)
    with pytest.raises(RefundExceedsRemainder):
        repository.reserve_refund(new_refund(payment, 4000), whole_remainder=False)
    rest, _ = repository.reserve_refund(new_refund(payment, 1), whole_remainder=True)
    assert rest.amount == 3999
    with pytest.raises(RefundNotAllowed):
        repository.reserve_refund(new_refund(payment, 1), whole_remainder=False)
    # A failed refund gives its amount back to the remainder.
    repository.complete_refund(rest.refund_id, RefundStatus.FAILED, failure_reason="x")
    assert repository.refundable_remainder(payment.payment_id) == 3999
    _, stored = repository.complete_refund(first.refund_id, RefundStatus.PROCESSED)
    assert stored.refunded_amount == 1000
    # Processing twice (a retried activity) does not count twice.
    _, stored = repository.complete_refund(first.refund_id, RefundStatus.PROCESSED)
    assert stored.refunded_amount == 1000


def test_refund_of_unpaid_payment_is_refused(repository: PaymentRepository) -> None:
    pending, _ = repository.insert_payment(new_payment())
    with pytest.raises(RefundNotAllowed, match="pending"):
        repository.reserve_refund(new_refund(pending, 100), whole_remainder=False)


def test_concurrent_refunds_never_exceed_the_payment(repository: PaymentRepository) -> None:
    payment = paid(repository, 4999)

    def attempt(_: int) -> str:
        try:
            repository.reserve_refund(new_refund(payment, 1000), whole_remainder=False)
            return "reserved"
        except RefundNotAllowed:
            return "refused"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(attempt, range(20)))
    assert outcomes.count("reserved") == 4
    assert repository.refundable_remainder(payment.payment_id) == 999


def test_listing_is_newest_first_with_cursor(repository: PaymentRepository) -> None:
    user = f"user-{uuid.uuid4().hex[:6]}"
    ids = [repository.insert_payment(new_payment(user_id=user))[0].payment_id for _ in range(5)]
    page = repository.list_payments(user_id=user, limit=2)
    seen = [p.payment_id for p in page.items]
    while page.next_cursor:
        page = repository.list_payments(user_id=user, limit=2, cursor=page.next_cursor)
        seen += [p.payment_id for p in page.items]
    assert seen == list(reversed(ids))
    with pytest.raises(InvalidRequest):
        repository.list_payments(cursor="not-a-cursor")


def test_open_payment_for_order(repository: PaymentRepository) -> None:
    first, _ = repository.insert_payment(new_payment(order_id="order-dup-" + uuid.uuid4().hex))
    second, _ = repository.insert_payment(new_payment(order_id=first.order_id))
    found = repository.find_open_payment_for_order(first.order_id, excluding=second.payment_id)
    assert found is not None and found.payment_id == first.payment_id
    # Racing payments for one order: the first is not a duplicate of the second.
    assert (
        repository.find_open_payment_for_order(first.order_id, excluding=first.payment_id) is None
    )
    repository.complete_payment(first.payment_id, PaymentStatus.FAILURE)
    assert (
        repository.find_open_payment_for_order(first.order_id, excluding=second.payment_id) is None
    )
