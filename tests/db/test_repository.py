"""The repository's invariants on SQLite and PostgreSQL (migrated by Alembic)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from payments.db.models import Payment, PaymentStatus, Refund, RefundStatus
from payments.db.repository import InvalidTransition, PaymentRepository
from payments.errors import (
    IdempotencyKeyReused,
    InvalidRequest,
    RefundExceedsRemainder,
    RefundNotAllowed,
)


@pytest.fixture
def repository(engine: sa.Engine) -> PaymentRepository:
    return PaymentRepository(engine)


def new_payment(amount: int = 4999, **fields: str) -> Payment:
    return Payment(
        payment_id=str(uuid.uuid4()),
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


def test_idempotency_key(repository: PaymentRepository) -> None:
    key = f"key-{uuid.uuid4()}"
    first, created = repository.insert_payment(new_payment(idempotency_key=key, fingerprint="a"))
    assert created
    replay = new_payment(idempotency_key=key, fingerprint="a")
    second, created = repository.insert_payment(replay)
    assert not created and second.payment_id == first.payment_id
    with pytest.raises(IdempotencyKeyReused):
        repository.insert_payment(new_payment(idempotency_key=key, fingerprint="b"))


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
