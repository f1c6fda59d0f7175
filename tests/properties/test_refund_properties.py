"""Property test of the refund cap, on SQLite and PostgreSQL: whatever sequence of refunds is
asked for (partial, whole remainder, some failing at the gateway, some processed), what is
reserved and what is refunded never exceed what was paid."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.contracts import PaymentOutcome, RefundOutcome
from payments.db.database import Database
from payments.errors import RefundNotAllowed
from tests.support.rows import payment_row, refund_row

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
def db(engine: sa.Engine) -> Database:
    return Database(engine)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(amount=st.integers(min_value=1, max_value=5000), steps=STEPS)
def test_refunds_never_sum_beyond_the_payment(
    db: Database, amount: int, steps: list[tuple[int | None, str]]
) -> None:
    payment, _ = db.payments.insert(payment_row(amount=amount))
    db.payments.complete(PaymentOutcome(payment.payment_id, succeeded=True, transaction_id="t"))
    reserved: dict[str, tuple[int, str]] = {}
    for requested, fate in steps:
        try:
            refund, _ = db.refunds.reserve(
                refund_row(payment, requested or 0, reason="property"),
                whole_remainder=requested is None,
            )
        except RefundNotAllowed:
            continue  # over the remainder, or nothing left: refused, nothing written
        if fate != "in_flight":
            db.refunds.complete(RefundOutcome(refund.refund_id, succeeded=fate == "processed"))
        reserved[refund.refund_id] = (refund.amount, fate)

        live = sum(a for a, f in reserved.values() if f != "failed")
        processed = sum(a for a, f in reserved.values() if f == "processed")
        stored = db.payments.get(payment.payment_id)
        assert stored is not None
        assert live <= amount
        assert stored.refunded_amount == processed <= amount
        assert db.refunds.remainder(payment.payment_id) == amount - live
