"""The fraud rules' reads and writes on SQLite and PostgreSQL: velocity counted in the
database, the blocklist, verdicts on payments and the review queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from payments.contracts import (
    FraudReason,
    FraudRecord,
    FraudVerdict,
    PaymentOutcome,
    ReviewDecision,
)
from payments.db.database import Database
from payments.db.models import Merchant, Payment
from payments.db.repositories.fraud import Velocity
from payments.errors import Conflict, NotFound

# Far from the days other tests of the shared session database look at (analytics windows).
NOW = datetime(2031, 6, 15, 12, 0, tzinfo=UTC)
FINGERPRINT = "ab" * 16


@pytest.fixture
def db(engine: sa.Engine) -> Database:
    return Database(engine)


def add(
    db: Database,
    *,
    ago: timedelta,
    user_id: str = "user-v",
    amount: int = 1000,
    currency: str = "USD",
    method: str = "credit_card",
    fingerprint: str | None = None,
    merchant_id: str = "default",
) -> Payment:
    payment = Payment(
        payment_id=str(uuid.uuid4()),
        merchant_id=merchant_id,
        order_id=f"order-{uuid.uuid4().hex[:8]}",
        user_id=user_id,
        amount=amount,
        currency=currency,
        payment_method=method,
        payment_method_fingerprint=fingerprint,
        created_at=NOW - ago,
        updated_at=NOW - ago,
    )
    db.payments.insert(payment)
    return payment


def velocity(db: Database, payment: Payment, fingerprint: str | None = None) -> Velocity:
    with db.fraud.reads() as reads:
        return reads.velocity(
            payment_id=payment.payment_id,
            merchant_id=payment.merchant_id,
            user_id=payment.user_id,
            amount_minor=payment.amount,
            currency=payment.currency,
            method=payment.payment_method,
            fingerprint=fingerprint,
            now=NOW,
            repeat_window=timedelta(minutes=5),
        )


def test_velocity_counts_the_users_payments_in_each_window(db: Database) -> None:
    user = f"user-{uuid.uuid4().hex[:6]}"
    for minutes in (1, 2, 9):  # within 10 minutes
        add(db, ago=timedelta(minutes=minutes), user_id=user, amount=500)
    add(db, ago=timedelta(minutes=30), user_id=user, amount=700)  # within the hour
    add(db, ago=timedelta(hours=5), user_id=user, amount=900, currency="EUR")  # the day
    add(db, ago=timedelta(days=3), user_id=user)  # older: only makes the user known
    add(db, ago=timedelta(minutes=1), user_id="someone-else")
    with Session(db.payments._engine) as session, session.begin():
        if session.get(Merchant, "other-merchant") is None:
            session.add(Merchant(merchant_id="other-merchant"))
    add(db, ago=timedelta(minutes=1), user_id=user, merchant_id="other-merchant")
    this = add(db, ago=timedelta(0), user_id=user, amount=500)

    counted = velocity(db, this)
    assert (counted.user_10m, counted.user_1h, counted.user_24h) == (3, 4, 5)
    # The sum is in the payment's currency: the EUR payment is not in it.
    assert counted.user_24h_amount_minor == 3 * 500 + 700
    assert counted.repeats == 2  # 5.00 USD by card within 5 minutes: 1 and 2 minutes ago
    assert not counted.user_is_new
    assert counted.first_payment_at == NOW - timedelta(days=3)


def test_repeats_are_the_same_amount_currency_and_method_within_the_window(
    db: Database,
) -> None:
    user = f"user-{uuid.uuid4().hex[:6]}"
    add(db, ago=timedelta(minutes=2), user_id=user, amount=500)
    add(db, ago=timedelta(minutes=3), user_id=user, amount=501)
    add(db, ago=timedelta(minutes=4), user_id=user, amount=500, method="wallet")
    add(db, ago=timedelta(minutes=6), user_id=user, amount=500)  # outside 5 minutes
    this = add(db, ago=timedelta(0), user_id=user, amount=500)
    assert velocity(db, this).repeats == 1


def test_a_user_without_earlier_payments_is_new(db: Database) -> None:
    this = add(db, ago=timedelta(0), user_id=f"user-{uuid.uuid4().hex[:6]}")
    counted = velocity(db, this)
    assert counted.user_is_new and counted.first_payment_at is None
    assert (counted.user_10m, counted.user_24h, counted.user_24h_amount_minor) == (0, 0, 0)


def test_velocity_of_a_payment_method_across_users(db: Database) -> None:
    fingerprint = uuid.uuid4().hex
    user = f"user-{uuid.uuid4().hex[:6]}"
    add(db, ago=timedelta(minutes=5), user_id=user, fingerprint=fingerprint)
    for n in range(3):
        add(db, ago=timedelta(minutes=20 + n), user_id=f"other-{n}", fingerprint=fingerprint)
    add(db, ago=timedelta(hours=3), user_id="other-0", fingerprint=fingerprint)
    add(db, ago=timedelta(days=2), user_id="other-9", fingerprint=fingerprint)
    this = add(db, ago=timedelta(0), user_id=user, fingerprint=fingerprint)
    counted = velocity(db, this, fingerprint)
    assert counted.fingerprint_1h == 4  # every user's, within the hour
    assert counted.fingerprint_24h == 5
    assert counted.fingerprint_24h_users == 3  # other users within the day
    assert velocity(db, this).fingerprint_1h == 0  # no fingerprint known: nothing counted


def test_blocklist_add_list_match_remove(db: Database) -> None:
    user = f"user-{uuid.uuid4().hex[:6]}"
    by_user = db.fraud.block("user", user, "chargebacks", created_by="key-1")
    by_bin = db.fraud.block("bin", "411111", "stolen batch", created_by="key-1")
    by_fingerprint = db.fraud.block("fingerprint", FINGERPRINT, "card testing", created_by=None)
    with pytest.raises(Conflict, match=by_user.entry_id):
        db.fraud.block("user", user, "again", created_by="key-1")
    listed = {entry.entry_id for entry in db.fraud.blocklist()}
    assert {by_user.entry_id, by_bin.entry_id, by_fingerprint.entry_id} <= listed

    def kinds(**found: str | None) -> set[str]:
        with db.fraud.reads() as reads:
            matches = reads.blocklisted(
                user_id=found.get("user_id") or "nobody",
                fingerprint=found.get("fingerprint"),
                card_bin=found.get("card_bin"),
            )
        return {entry.kind for entry in matches}

    assert kinds(user_id=user) == {"user"}
    assert kinds(fingerprint=FINGERPRINT) == {"fingerprint"}
    assert kinds(card_bin="41111112") == {"bin"}  # a 6-digit entry matches an 8-digit BIN
    assert kinds(card_bin="555555") == set()
    db.fraud.unblock(by_bin.entry_id)
    assert kinds(card_bin="411111") == set()
    with pytest.raises(NotFound):
        db.fraud.unblock(by_bin.entry_id)


def test_a_verdict_is_kept_once_in_the_trail_and_reviews_are_listed(db: Database) -> None:
    payment = add(db, ago=timedelta(0), user_id=f"user-{uuid.uuid4().hex[:6]}")
    verdict = FraudVerdict(
        "review", 70, [FraudReason("repeat_payment", "the same again")], 12, "fraud-model-v1"
    )
    deadline = (NOW + timedelta(days=1)).isoformat()
    record = FraudRecord(payment.payment_id, verdict, FINGERPRINT, "411111", deadline)
    for _ in range(2):  # a retried step writes the same
        stored = db.fraud.record_verdict(record)
    assert stored.fraud_verdict == verdict
    assert stored.review_deadline_at == NOW + timedelta(days=1)
    trail = [e for e in db.audit.trail(payment.payment_id) if e.cause == "fraud_check"]
    assert [e.detail for e in trail] == ["review (score 70): repeat_payment: the same again"]
    assert payment.payment_id in [p.payment_id for p in db.fraud.awaiting_review(limit=500)]

    for _ in range(2):
        db.fraud.record_review(
            payment.payment_id, ReviewDecision("approve", "customer called", "key-9")
        )
    reviews = [e for e in db.audit.trail(payment.payment_id) if e.cause.startswith("review:")]
    assert [(e.cause, e.detail) for e in reviews] == [
        ("review:approve", "by key key-9: customer called")
    ]


def earlier_open(db: Database, payment: Payment) -> str | None:
    with db.fraud.reads() as reads:
        this = reads.payment(payment.payment_id)
        assert this is not None and this.merchant_id == payment.merchant_id
        found = reads.earlier_open_payment(
            payment.order_id, this=this, payment_id=payment.payment_id, merchant_id="default"
        )
    return found.payment_id if found is not None else None


def test_the_duplicate_check_finds_an_earlier_open_payment_of_the_order(db: Database) -> None:
    first = add(db, ago=timedelta(seconds=2))
    second = add(db, ago=timedelta(seconds=1))
    second.order_id = first.order_id
    with Session(db.payments._engine) as session, session.begin():
        session.merge(second)
    assert earlier_open(db, second) == first.payment_id
    # Racing payments for one order: the first is not a duplicate of the second.
    assert earlier_open(db, first) is None
    db.payments.complete(PaymentOutcome(first.payment_id, succeeded=False))
    assert earlier_open(db, second) is None  # a failed payment does not hold the order


def test_the_duplicate_check_breaks_a_tie_of_creation_times_by_id(db: Database) -> None:
    order_id = f"order-{uuid.uuid4().hex[:8]}"
    one, other = (
        Payment(
            payment_id=str(uuid.uuid4()),
            merchant_id="default",
            order_id=order_id,
            user_id="user-tie",
            amount=1000,
            currency="USD",
            payment_method="credit_card",
            created_at=NOW,
            updated_at=NOW,
        )
        for _ in range(2)
    )
    for payment in (one, other):
        db.payments.insert(payment)
    low, high = sorted((one, other), key=lambda p: p.payment_id)
    assert earlier_open(db, high) == low.payment_id
    assert earlier_open(db, low) is None


def test_the_duplicate_check_is_the_merchants(db: Database) -> None:
    mine = add(db, ago=timedelta(seconds=1))
    with db.fraud.reads() as reads:
        theirs = reads.earlier_open_payment(
            mine.order_id, this=None, payment_id="another", merchant_id="another-merchant"
        )
        ours = reads.earlier_open_payment(
            mine.order_id, this=None, payment_id="another", merchant_id="default"
        )
    assert theirs is None
    assert ours is not None and (ours.payment_id, ours.payment_status) == (
        mine.payment_id,
        "pending",
    )
