"""Refunds of a converted payment share out what was charged, on SQLite and PostgreSQL.

A payment presented in one currency and charged in another is refunded in the presented
currency; each refund's ``charged_amount`` is what the gateway gives back. Whatever refunds
are asked for (small or large, some failing, some still in flight), the charged shares of the
refunds not failed never add up to more than the charge, none is negative, and once the whole
presented amount is refunded they add up to exactly the charge."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Context, Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.contracts import PaymentOutcome, RefundOutcome
from payments.db.database import Database
from payments.db.models import Payment, Refund, utcnow
from payments.errors import RefundNotAllowed
from payments.money import Money
from payments.service import convert
from tests.support.rows import payment_row, refund_row

# One currency of each exponent: yen (0), dollar (2), dinar (3).
CURRENCIES = ["JPY", "USD", "KWD"]


@dataclass(frozen=True)
class Ask:
    """Ask ``times`` in a row for a refund (None: the whole remainder); the gateway then
    processes each, fails it, or it stays in flight."""

    amount: int | None
    fate: str
    times: int


@dataclass(frozen=True)
class Finish:
    """A refund still in flight (the oldest but ``skip``) ends, processed or failed."""

    skip: int
    succeeded: bool


STEPS = st.lists(
    st.one_of(
        st.builds(
            Ask,
            # Mostly small refunds: that is where rounding each one on its own goes wrong.
            amount=st.one_of(
                st.none(), st.integers(1, 5), st.integers(1, 200), st.integers(1, 10**7)
            ),
            fate=st.sampled_from(["processed", "failed", "in_flight"]),
            times=st.integers(1, 40),
        ),
        st.builds(Finish, skip=st.integers(0, 5), succeeded=st.booleans()),
    ),
    min_size=1,
    max_size=12,
)


@st.composite
def conversions(draw: st.DrawFn) -> tuple[Money, str, Money]:
    """A payment's amount, exchange rate and what it was charged, in two currencies of
    different exponents."""
    presented, settlement = draw(st.permutations(CURRENCIES))[:2]
    # Small payments too, so that a few dozen refunds can use one up.
    amount = Money(draw(st.one_of(st.integers(1, 200), st.integers(1, 10**7))), presented)
    # The rate is drawn through the charge it makes, so that every ratio of minor units is
    # as likely: a fraction of a unit per unit as well as several.
    target = Money(draw(st.integers(1, 4 * amount.minor)), settlement)
    rate = Context(prec=12).divide(target.to_decimal(), amount.to_decimal())
    return amount, f"{rate:f}", convert(amount, rate, settlement)


@pytest.fixture(scope="module")
def db(engine: sa.Engine) -> Database:
    return Database(engine)


def converted_payment(db: Database, amount: Money, rate: str, charged: Money) -> Payment:
    payment, _ = db.payments.insert(
        payment_row(
            amount=amount.minor,
            currency=amount.currency,
            charged_amount=charged.minor,
            charged_currency=charged.currency,
            exchange_rate=rate,
            rate_as_of=utcnow(),
        )
    )
    return db.payments.complete(
        PaymentOutcome(payment.payment_id, succeeded=True, transaction_id="tx-sale")
    )


class Refunds:
    """The refunds of one payment, asked for through the repository; the ones not failed
    are kept here with the charged share the repository gave each."""

    def __init__(self, db: Database, payment: Payment) -> None:
        self._db = db
        self.payment = payment
        self.live: dict[str, Refund] = {}
        self.in_flight: list[Refund] = []

    def ask(self, amount: int | None, fate: str = "processed") -> Refund | None:
        """The reserved refund, None when it was refused (over the remainder, nothing left)."""
        try:
            refund, _ = self._db.refunds.reserve(
                refund_row(self.payment, amount or 0, reason="shares"),
                whole_remainder=amount is None,
            )
        except RefundNotAllowed:
            return None
        self.live[refund.refund_id] = refund
        if fate == "in_flight":
            self.in_flight.append(refund)
        else:
            self.finish(refund, succeeded=fate == "processed")
        return refund

    def finish(self, refund: Refund, *, succeeded: bool) -> None:
        self._db.refunds.complete(RefundOutcome(refund.refund_id, succeeded=succeeded))
        if not succeeded:  # its amount is refundable again, its share no longer given back
            del self.live[refund.refund_id]

    def assert_shared_out(self) -> None:
        shares = [r.charged_amount for r in self.live.values()]
        assert all(share is not None and share >= 0 for share in shares), shares
        charged = sum(share or 0 for share in shares)
        assert self.payment.charged_amount is not None
        assert charged <= self.payment.charged_amount
        if sum(r.amount for r in self.live.values()) == self.payment.amount:
            assert charged == self.payment.charged_amount


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(conversion=conversions(), steps=STEPS)
def test_converted_refunds_never_share_out_more_than_the_charge(
    db: Database, conversion: tuple[Money, str, Money], steps: list[Ask | Finish]
) -> None:
    refunds = Refunds(db, converted_payment(db, *conversion))
    for step in steps:
        if isinstance(step, Finish):
            if refunds.in_flight:
                skip = step.skip % len(refunds.in_flight)
                refunds.finish(refunds.in_flight.pop(skip), succeeded=step.succeeded)
        else:
            for _ in range(step.times):
                if refunds.ask(step.amount, step.fate) is None:
                    break
                refunds.assert_shared_out()
        refunds.assert_shared_out()
    # Then whatever is left is refunded: the shares now add up to exactly the charge.
    while refunds.in_flight:
        refunds.finish(refunds.in_flight.pop(), succeeded=True)
    refunds.ask(None)
    assert sum(r.amount for r in refunds.live.values()) == refunds.payment.amount
    refunds.assert_shared_out()
    # As stored, too.
    for refund in refunds.live.values():
        stored = db.refunds.get(refund.refund_id)
        assert stored is not None and stored.charged_amount == refund.charged_amount


@pytest.mark.parametrize(
    ("amount", "rate", "charged", "step"),
    [
        # 100 JPY at 0.0067 is 0.67 USD: each yen is worth two thirds of a cent.
        (Money(100, "JPY"), "0.0067", Money(67, "USD"), 1),
        # 1.00 USD at 0.3075 is 0.308 KWD (half-even): each cent is worth 3.08 fils.
        (Money(100, "USD"), "0.3075", Money(308, "KWD"), 1),
        # 1.000 KWD at 3.2537 is 3.25 USD: every 7 fils are worth 2.275 cents.
        (Money(1000, "KWD"), "3.2537", Money(325, "USD"), 7),
    ],
)
def test_many_small_refunds_take_exactly_the_charge(
    db: Database, amount: Money, rate: str, charged: Money, step: int
) -> None:
    assert convert(amount, Decimal(rate), charged.currency) == charged
    payment = converted_payment(db, amount, rate, charged)
    refunds = Refunds(db, payment)
    shares: list[int] = []
    refunded = 0
    while refunded < amount.minor:
        refund = refunds.ask(min(step, amount.minor - refunded))
        assert refund is not None and refund.charged_amount is not None
        refunded += refund.amount
        shares.append(refund.charged_amount)
        # Each refund is worth its part of the charge to within one minor unit, and the
        # running total never goes beyond the charge.
        exact = Decimal(refund.amount) * charged.minor / amount.minor
        assert abs(refund.charged_amount - exact) < 1, (len(shares), refund.charged_amount)
        assert sum(shares) <= charged.minor
    assert sum(shares) == charged.minor
    stored = db.payments.get(payment.payment_id)
    assert stored is not None and stored.refunded_amount == amount.minor
