"""Property test of the refund cap, on SQLite and PostgreSQL: whatever sequence of refunds is
asked for (partial, whole remainder, some failing at the gateway, some processed), what is
reserved and what is refunded never exceed what was paid."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.db.models import Payment, Refund
from payments.db.repository import PaymentRepository
from payments.errors import RefundNotAllowed
from payments.vocabulary import PaymentStatus, RefundStatus

# One step: ask for a refund (an amount, or None: the whole remainder), then the gateway
# processes it, fails it, or it stays in flight.
STEPS = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(min_value=1, max_value=6000)),
        st.sampled_from(["processed", "failed", "in_flight"]),
    ),
    min_size=1,
    max_size=12,
)


@pytest.fixture(scope="module")
def repository(engine: sa.Engine) -> PaymentRepository:
    return PaymentRepository(engine)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(amount=st.integers(min_value=1, max_value=5000), steps=STEPS)
def test_refunds_never_sum_beyond_the_payment(
    repository: PaymentRepository, amount: int, steps: list[tuple[int | None, str]]
) -> None:
    payment, _ = repository.insert_payment(
        Payment(
            payment_id=str(uuid.uuid4()),
            merchant_id="default",
            order_id=f"order-{uuid.uuid4().hex[:8]}",
            user_id="user-1",
            amount=amount,
            currency="USD",
            payment_method="credit_card",
        )
    )
    repository.complete_payment(payment.payment_id, PaymentStatus.SUCCESS, transaction_id="t")
    reserved: dict[str, tuple[int, str]] = {}
    for requested, fate in steps:
        try:
            refund, _ = repository.reserve_refund(
                Refund(
                    refund_id=str(uuid.uuid4()),
                    merchant_id="default",
                    payment_id=payment.payment_id,
                    amount=requested or 0,
                    currency="USD",
                    reason="property",
                ),
                whole_remainder=requested is None,
            )
        except RefundNotAllowed:
            continue  # over the remainder, or nothing left: refused, nothing written
        if fate != "in_flight":
            status = RefundStatus.PROCESSED if fate == "processed" else RefundStatus.FAILED
            repository.complete_refund(refund.refund_id, status)
        reserved[refund.refund_id] = (refund.amount, fate)

        live = sum(a for a, f in reserved.values() if f != "failed")
        processed = sum(a for a, f in reserved.values() if f == "processed")
        stored = repository.get_payment(payment.payment_id)
        assert stored is not None
        assert live <= amount
        assert stored.refunded_amount == processed <= amount
        assert repository.refundable_remainder(payment.payment_id) == amount - live
