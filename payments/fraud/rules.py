"""The fraud rules: what each one looks at, when it fires, and what it says.

Pure: ``assess`` reads a payment's facts (its own, and counts the database made of its payer's
and its payment method's recent payments) and the learned score, and gives a verdict. Every
rule that fires names itself (a stable id) and says why in a sentence, so an operator (and a
merchant's support) can read why a payment was held or refused.

A rule either asks for review or declines. The verdict's decision is the strongest of the rules
that fired and of the learned score's thresholds, so a rule can always force review or decline
whatever the score says; the score is the higher of the learned score and the rules' floor
(``REVIEW_FLOOR`` for review, 100 for decline).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from payments.config import FraudSettings
from payments.contracts import FraudReason, FraudVerdict
from payments.money import Money
from payments.vocabulary import FraudOutcome

# The score a payment gets when a rule sends it to review (the learned score may be higher).
REVIEW_FLOOR = 70


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    """What the rules read; counts exclude the payment itself."""

    amount: Money
    cap: Money  # the largest single payment in this currency
    user_id: str
    # The user's payments (any status) within 10 minutes, an hour, a day, and the sum in
    # this currency within a day (minor units).
    user_10m: int
    user_1h: int
    user_24h: int
    user_24h_amount_minor: int
    # Whether the user has paid before at all.
    user_is_new: bool
    # The same user, amount, currency and method within the repeat window.
    repeats: int
    # The payment method's fingerprint (None: unknown) and its payments within an hour, and
    # how many users it paid for within a day.
    fingerprint: str | None
    fingerprint_1h: int
    fingerprint_24h_users: int
    card_bin: str | None
    # Blocklist entries matching the user, the fingerprint, the BIN: (kind, reason).
    blocklisted: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LearnedOpinion:
    score: int  # 0-100
    version: str


def assess(
    facts: PaymentFacts, settings: FraudSettings, learned: LearnedOpinion | None
) -> FraudVerdict:
    declines, reviews = _fired(facts, settings)
    if learned is not None:
        if learned.score >= settings.model_decline_score:
            declines.append(
                FraudReason(
                    "model_score",
                    f"the learned score is {learned.score}, at or above the decline "
                    f"threshold of {settings.model_decline_score}",
                )
            )
        elif learned.score >= settings.model_review_score:
            reviews.append(
                FraudReason(
                    "model_score",
                    f"the learned score is {learned.score}, at or above the review "
                    f"threshold of {settings.model_review_score}",
                )
            )
    score = learned.score if learned is not None else 0
    if declines:
        decision, score = FraudOutcome.DECLINE, 100
    elif reviews:
        decision, score = FraudOutcome.REVIEW, max(score, REVIEW_FLOOR)
    else:
        decision = FraudOutcome.APPROVE
    return FraudVerdict(
        decision=decision,
        score=score,
        reasons=declines + reviews,
        model_score=learned.score if learned is not None else None,
        model_version=learned.version if learned is not None else None,
    )


def _fired(
    facts: PaymentFacts, settings: FraudSettings
) -> tuple[list[FraudReason], list[FraudReason]]:
    """(declines, reviews): the rules that fired, strongest first."""
    declines: list[FraudReason] = []
    reviews: list[FraudReason] = []
    for kind, reason in facts.blocklisted:
        declines.append(
            FraudReason(f"blocklist_{kind}", f"the {_BLOCKED[kind]} is blocklisted: {reason}")
        )
    if facts.amount.minor > facts.cap.minor:
        declines.append(
            FraudReason(
                "amount_limit",
                f"{facts.amount} {facts.amount.currency} exceeds the {facts.cap} "
                f"{facts.cap.currency} limit for a single payment",
            )
        )
    # Counts with this payment: "more than 10 payments in 10 minutes" holds the 11th.
    in_10m, in_1h, in_24h = facts.user_10m + 1, facts.user_1h + 1, facts.user_24h + 1
    if in_10m > settings.user_10m_decline_count:
        declines.append(
            FraudReason(
                "velocity_user_10m",
                f"this is the user's payment number {in_10m} in 10 minutes "
                f"(more than {settings.user_10m_decline_count} are declined)",
            )
        )
    elif in_10m > settings.user_10m_review_count:
        reviews.append(
            FraudReason(
                "velocity_user_10m",
                f"this is the user's payment number {in_10m} in 10 minutes "
                f"(more than {settings.user_10m_review_count} are reviewed)",
            )
        )
    if in_1h > settings.user_1h_review_count:
        reviews.append(
            FraudReason(
                "velocity_user_1h",
                f"this is the user's payment number {in_1h} in an hour "
                f"(more than {settings.user_1h_review_count} are reviewed)",
            )
        )
    if in_24h > settings.user_24h_review_count:
        reviews.append(
            FraudReason(
                "velocity_user_24h",
                f"this is the user's payment number {in_24h} in 24 hours "
                f"(more than {settings.user_24h_review_count} are reviewed)",
            )
        )
    daily = Money(round(facts.cap.minor * settings.user_24h_amount_review_caps), facts.cap.currency)
    spent = facts.user_24h_amount_minor + facts.amount.minor
    if spent > daily.minor:
        reviews.append(
            FraudReason(
                "amount_user_24h",
                f"the user's payments in {facts.amount.currency} within 24 hours would reach "
                f"{Money(spent, facts.amount.currency)} {facts.amount.currency}, above {daily}",
            )
        )
    if facts.fingerprint is not None and (
        facts.fingerprint_1h + 1 > settings.fingerprint_1h_review_count
    ):
        reviews.append(
            FraudReason(
                "velocity_fingerprint_1h",
                f"this is the payment method's payment number {facts.fingerprint_1h + 1} in "
                f"an hour (more than {settings.fingerprint_1h_review_count} are reviewed)",
            )
        )
    if facts.fingerprint_24h_users > settings.fingerprint_24h_users_review_count:
        reviews.append(
            FraudReason(
                "fingerprint_many_users",
                f"the payment method paid for {facts.fingerprint_24h_users} other users in "
                f"the last 24 hours (more than {settings.fingerprint_24h_users_review_count} "
                "needs review)",
            )
        )
    if settings.repeat_window_seconds > 0 and facts.repeats > 0:
        reviews.append(
            FraudReason(
                "repeat_payment",
                f"the user paid the same amount with the same method "
                f"{facts.repeats} time(s) in the last "
                f"{round(settings.repeat_window_seconds / 60)} minutes",
            )
        )
    large = round(facts.cap.minor * settings.new_user_large_fraction)
    if facts.user_is_new and facts.amount.minor > large:
        reviews.append(
            FraudReason(
                "new_user_large_payment",
                f"a first payment of {facts.amount} {facts.amount.currency} is above "
                f"{Money(large, facts.amount.currency)} {facts.amount.currency}, "
                "the most a new user pays unreviewed",
            )
        )
    return declines, reviews


_BLOCKED = {"user": "user", "fingerprint": "payment method", "bin": "card's BIN"}
