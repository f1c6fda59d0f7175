"""Each fraud rule on its own: when it fires, what it decides, what it says."""

from __future__ import annotations

from dataclasses import replace

import pytest

from devtools.stack import high_volume_fraud_settings
from payments.config import FraudSettings
from payments.contracts import FraudVerdict
from payments.fraud.countries import bin_country_mismatch
from payments.fraud.rules import REVIEW_FLOOR, LearnedOpinion, PaymentFacts, assess
from payments.money import Money

SETTINGS = FraudSettings()

QUIET = PaymentFacts(
    amount=Money(4999, "USD"),
    cap=Money(10_000_00, "USD"),
    user_id="user-1",
    user_10m=0,
    user_1h=0,
    user_24h=0,
    user_24h_amount_minor=0,
    user_is_new=False,
    repeats=0,
    fingerprint="f" * 32,
    fingerprint_1h=0,
    fingerprint_24h_users=0,
    card_bin="411111",
)


def rules(verdict: FraudVerdict) -> list[str]:
    return [reason.rule for reason in verdict.reasons]


def test_a_quiet_payment_is_approved_with_the_learned_score() -> None:
    verdict = assess(QUIET, SETTINGS, LearnedOpinion(12, "fraud-model-v1"))
    assert (verdict.decision, verdict.score, verdict.reasons) == ("approve", 12, [])
    assert (verdict.model_score, verdict.model_version) == (12, "fraud-model-v1")


def test_without_a_model_the_rules_still_decide() -> None:
    verdict = assess(QUIET, SETTINGS, None)
    assert (verdict.decision, verdict.score, verdict.model_score) == ("approve", 0, None)


@pytest.mark.parametrize(
    ("before", "decision"),
    [(9, "approve"), (10, "review"), (29, "review"), (30, "decline")],
)
def test_user_velocity_in_10_minutes(before: int, decision: str) -> None:
    # Defaults: more than 10 in 10 minutes → review, more than 30 → decline; ``before``
    # payments came before this one.
    facts = replace(QUIET, user_10m=before, user_1h=before, user_24h=before)
    verdict = assess(facts, SETTINGS, None)
    assert verdict.decision == decision
    if decision != "approve":
        assert rules(verdict)[0] == "velocity_user_10m"
        assert f"payment number {before + 1} in 10 minutes" in verdict.reasons[0].message


def test_user_velocity_in_an_hour_and_a_day() -> None:
    assert rules(assess(replace(QUIET, user_1h=30, user_24h=30), SETTINGS, None)) == [
        "velocity_user_1h"
    ]
    assert rules(assess(replace(QUIET, user_1h=29, user_24h=29), SETTINGS, None)) == []
    assert rules(assess(replace(QUIET, user_24h=100), SETTINGS, None)) == ["velocity_user_24h"]


def test_a_users_daily_sum_in_one_currency() -> None:
    # Three times the single-payment cap within 24 hours, this payment included.
    near = replace(QUIET, user_24h_amount_minor=30_000_00 - 4999)
    assert assess(near, SETTINGS, None).decision == "approve"
    over = replace(near, user_24h_amount_minor=near.user_24h_amount_minor + 1)
    verdict = assess(over, SETTINGS, None)
    assert rules(verdict) == ["amount_user_24h"]
    assert "30000.01 USD" in verdict.reasons[0].message


def test_payment_method_velocity_and_sharing() -> None:
    assert rules(assess(replace(QUIET, fingerprint_1h=4), SETTINGS, None)) == []
    assert rules(assess(replace(QUIET, fingerprint_1h=5), SETTINGS, None)) == [
        "velocity_fingerprint_1h"
    ]
    assert rules(assess(replace(QUIET, fingerprint_24h_users=4), SETTINGS, None)) == [
        "fingerprint_many_users"
    ]


def test_the_same_payment_again_within_minutes() -> None:
    verdict = assess(replace(QUIET, repeats=1), SETTINGS, None)
    assert (verdict.decision, rules(verdict)) == ("review", ["repeat_payment"])
    assert "in the last 5 minutes" in verdict.reasons[0].message


def test_a_repeat_window_of_zero_turns_the_rule_off() -> None:
    off = FraudSettings(repeat_window_seconds=0)
    assert assess(replace(QUIET, repeats=3), off, None).decision == "approve"


def test_the_test_stacks_thresholds_hold_nothing_whatever_the_counts() -> None:
    # The stacks of the resilience tests and benchmarks pay hundreds of times a minute as
    # one user, many at once: two payments of one amount created in the same millisecond
    # are a repeat to any window above zero, and were held for review (pending for a day).
    busy = replace(
        QUIET,
        amount=Money(10_000_00, "USD"),
        user_10m=10_000,
        user_1h=10_000,
        user_24h=10_000,
        user_24h_amount_minor=10_000 * 10_000_00,
        user_is_new=True,
        repeats=50,
        fingerprint_1h=10_000,
        fingerprint_24h_users=500,
    )
    verdict = assess(busy, high_volume_fraud_settings(), LearnedOpinion(100, "fraud-model-v1"))
    assert (verdict.decision, verdict.reasons) == ("approve", [])


def test_a_large_first_payment_of_a_new_user() -> None:
    # A quarter of the cap (2500.00 USD) is the most a new user pays unreviewed.
    new = replace(QUIET, user_is_new=True, amount=Money(2500_00, "USD"))
    assert assess(new, SETTINGS, None).decision == "approve"
    verdict = assess(replace(new, amount=Money(2500_01, "USD")), SETTINGS, None)
    assert rules(verdict) == ["new_user_large_payment"]
    # The same amount from a user who has paid before is fine.
    assert (
        assess(
            replace(new, user_is_new=False, amount=Money(2500_01, "USD")), SETTINGS, None
        ).decision
        == "approve"
    )


def test_amount_limit_declines() -> None:
    verdict = assess(replace(QUIET, amount=Money(10_000_01, "USD")), SETTINGS, None)
    assert (verdict.decision, verdict.score, rules(verdict)) == ("decline", 100, ["amount_limit"])
    assert "10000.01 USD exceeds the 10000.00 USD limit" in verdict.reasons[0].message


@pytest.mark.parametrize("kind", ["user", "fingerprint", "bin"])
def test_blocklisted_user_fingerprint_or_bin_declines(kind: str) -> None:
    verdict = assess(replace(QUIET, blocklisted=[(kind, "chargebacks")]), SETTINGS, None)
    assert (verdict.decision, rules(verdict)) == ("decline", [f"blocklist_{kind}"])
    assert verdict.reasons[0].message.endswith("is blocklisted: chargebacks")


def test_the_learned_score_sends_to_review_at_its_threshold() -> None:
    assert assess(QUIET, SETTINGS, LearnedOpinion(79, "v")).decision == "approve"
    verdict = assess(QUIET, SETTINGS, LearnedOpinion(80, "v"))
    assert (verdict.decision, verdict.score, rules(verdict)) == ("review", 80, ["model_score"])
    # Declining on the score alone is off by default, and can be turned on.
    assert assess(QUIET, SETTINGS, LearnedOpinion(100, "v")).decision == "review"
    strict = FraudSettings(model_decline_score=95)
    assert assess(QUIET, strict, LearnedOpinion(96, "v")).decision == "decline"


def test_rules_force_review_or_decline_whatever_the_score() -> None:
    review = assess(replace(QUIET, repeats=1), SETTINGS, LearnedOpinion(3, "v"))
    assert (review.decision, review.score, review.model_score) == ("review", REVIEW_FLOOR, 3)
    decline = assess(replace(QUIET, blocklisted=[("user", "x")]), SETTINGS, LearnedOpinion(3, "v"))
    assert (decline.decision, decline.score) == ("decline", 100)


def test_every_rule_that_fired_is_told_declines_first() -> None:
    facts = replace(QUIET, user_10m=11, repeats=2, blocklisted=[("bin", "stolen batch")])
    assert rules(assess(facts, SETTINGS, None)) == [
        "blocklist_bin",
        "velocity_user_10m",
        "repeat_payment",
    ]


def test_thresholds_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_USER_10M_REVIEW_COUNT", "2")
    monkeypatch.setenv("FRAUD_USER_10M_DECLINE_COUNT", "3")
    settings = FraudSettings()
    assert assess(replace(QUIET, user_10m=2), settings, None).decision == "review"
    assert assess(replace(QUIET, user_10m=3), settings, None).decision == "decline"


def test_a_decline_threshold_below_the_review_one_is_refused() -> None:
    with pytest.raises(ValueError, match="FRAUD_USER_10M_DECLINE_COUNT"):
        FraudSettings(user_10m_review_count=10, user_10m_decline_count=5)


@pytest.mark.parametrize(
    ("country", "currency", "mismatch"),
    [("USA", "USD", False), ("CAN", "USD", True), ("FRA", "EUR", False), ("GBR", "EUR", True),
     (None, "USD", False), ("USA", "XTS", False)],
)  # fmt: skip
def test_bin_country_mismatch(country: str | None, currency: str, mismatch: bool) -> None:
    assert bin_country_mismatch(country, currency) is mismatch
