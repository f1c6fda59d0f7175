"""A seeded, labelled data set of payments for training the learned fraud score.

No real payments may leave production, so the model is trained on payments made up here, in
the shape of the fraud a card merchant sees (the patterns, not the figures, of public
write-ups):

- cash-out: a stolen card spent fast on large amounts, from an account made minutes ago, often
  at night where the payer is and with a card from another country;
- card testing: many tiny payments in a burst, to learn which stolen cards still work;
- account takeover: an old, trusted account suddenly paying large amounts at odd hours;
- blend-in: fraud that looks like any other payment (what no score can catch).

Legitimate payers overlap with all of it (travellers' foreign cards, night owls, first
purchases, a family sharing a card, shopping sprees), so a good model reaches a high ROC AUC,
not 1.0. Rows are consistent with what the fraud step would read from the database: a payer
who paid for the first time has no earlier payments, and one whose first payment was five
minutes ago has none older than that.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from payments.fraud.features import FraudFeatures

CURRENCIES = ("USD", "EUR", "GBP", "JPY")
CURRENCY_WEIGHTS = (0.45, 0.30, 0.15, 0.10)
# Major units of each currency per US dollar (rough: the amounts only need the right scale).
UNITS_PER_USD = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 150.0}
# Where a currency's payers live, as UTC offsets: hours are drawn in the payer's local time
# (people shop in the evening, fraud happens while the card's owner sleeps) and stored in UTC,
# as the fraud step reads them.
UTC_OFFSETS = {"USD": (-8, -7, -6, -5, -5, -5), "EUR": (1, 1, 2), "GBP": (0,), "JPY": (9,)}

METHODS = ("credit_card", "debit_card", "bank_transfer", "wallet")
LEGIT_METHOD_WEIGHTS = (0.40, 0.30, 0.15, 0.15)
# Stolen credentials are mostly cards and wallets; bank transfers are slow to cash out.
FRAUD_METHOD_WEIGHTS = (0.52, 0.12, 0.06, 0.30)

# Local hour 0..23: few payments at night, most in the evening.
LEGIT_HOUR_WEIGHTS = (
    *(2, 1, 0.6, 0.4, 0.4, 0.5, 1, 2, 3, 4, 5, 6),  # 00-11
    *(7, 7, 6, 6, 6, 7, 8, 9, 9, 8, 6, 4),  # 12-23
)

FRAUD_RATE = 0.03
PROGRESS_EVERY = 1_000


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means used here."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _thin(rng: random.Random, count: int, keep: float) -> int:
    """How many of ``count`` payments fall in a shorter window (each with chance ``keep``)."""
    return sum(rng.random() < keep for _ in range(count))


def _pick(rng: random.Random, options: tuple[str, ...], weights: tuple[float, ...]) -> str:
    return rng.choices(options, weights)[0]


def _amount_major(rng: random.Random, usd: float, currency: str) -> float:
    major = max(1.0, usd) * UNITS_PER_USD[currency]
    # Prices in yen have no minor unit; the others have cents.
    return float(max(1, round(major))) if currency == "JPY" else max(1.0, round(major, 2))


def _consistent(
    age_days: float, last_10m: int, last_1h: int, last_24h: int
) -> tuple[float, int, int, int]:
    """Counts a database could hold for a payer whose first payment was ``age_days`` ago."""
    if age_days == 0.0:
        return 0.0, 0, 0, 0
    minutes = age_days * 24 * 60
    # The first payment is itself one of the counted ones, and nothing is older than it.
    if minutes <= 10:
        last_10m = max(last_10m, 1)
        return age_days, last_10m, last_10m, last_10m
    if minutes <= 60:
        last_1h = max(last_1h, 1)
        return age_days, min(last_10m, last_1h), last_1h, last_1h
    return age_days, last_10m, last_1h, max(last_24h, 1 if minutes <= 24 * 60 else 0)


def _legit(rng: random.Random) -> FraudFeatures:
    currency = _pick(rng, CURRENCIES, CURRENCY_WEIGHTS)
    method = _pick(rng, METHODS, LEGIT_METHOD_WEIGHTS)
    kind = rng.random()
    if kind < 0.03:  # a big-ticket purchase: a laptop, a flight
        usd = rng.lognormvariate(math.log(700), 0.6)
    else:
        usd = rng.lognormvariate(math.log(40), 1.0)

    habit = rng.random()
    if habit < 0.80:
        last_24h = _poisson(rng, 0.3)
    elif habit < 0.97:
        last_24h = _poisson(rng, 2.0)
    else:  # a shopping spree, a reseller, a household on one account
        last_24h = _poisson(rng, 9.0)
    last_1h = _thin(rng, last_24h, 0.2)
    last_10m = _thin(rng, last_1h, 0.4)

    if rng.random() < 0.08:  # a first purchase
        age = 0.0 if last_24h == 0 else rng.uniform(0.001, 1.0)
    else:
        age = min(3650.0, rng.lognormvariate(math.log(200), 1.4))
    age, last_10m, last_1h, last_24h = _consistent(age, last_10m, last_1h, last_24h)

    card = rng.random()
    if card < 0.10:
        fingerprint = 0  # unknown (wallets and transfers often hide it)
    elif card < 0.95:
        fingerprint = last_24h
    else:  # a family card: other members paid with it today
        fingerprint = last_24h + 1 + _poisson(rng, 1.0)

    local_hour = rng.choices(range(24), LEGIT_HOUR_WEIGHTS)[0]
    # Travellers and cross-border shoppers pay with cards from elsewhere.
    mismatch = method != "bank_transfer" and rng.random() < 0.06
    return _features(
        rng,
        usd,
        currency,
        method,
        (last_10m, last_1h, last_24h),
        fingerprint,
        age,
        local_hour,
        mismatch,
    )


def _fraud(rng: random.Random) -> FraudFeatures:
    currency = _pick(rng, CURRENCIES, CURRENCY_WEIGHTS)
    method = _pick(rng, METHODS, FRAUD_METHOD_WEIGHTS)
    pattern = rng.random()
    if pattern < 0.45:  # cash-out
        usd = rng.lognormvariate(math.log(260), 0.9)
        burst = rng.random() < 0.5
        # Half from an account made for the purpose, half from one a day or two old.
        age = 0.0 if rng.random() < 0.5 else rng.uniform(0.0005, 2.0)
        night, mismatch = 0.35, 0.35
    elif pattern < 0.57:  # card testing
        usd = rng.uniform(1.0, 5.0)
        burst, age = True, rng.uniform(0.0005, 0.5)
        night, mismatch = 0.35, 0.50
    elif pattern < 0.64:  # account takeover
        usd = rng.lognormvariate(math.log(300), 0.8)
        burst, age = rng.random() < 0.4, min(3650.0, rng.lognormvariate(math.log(150), 1.2))
        night, mismatch = 0.40, 0.35
    else:  # blend-in
        usd = rng.lognormvariate(math.log(50), 1.0)
        burst = rng.random() < 0.1
        age = 0.0 if rng.random() < 0.15 else min(3650.0, rng.lognormvariate(math.log(90), 1.5))
        night, mismatch = 0.10, 0.08

    if burst:
        last_10m = 1 + _poisson(rng, 7.0 if 0.45 <= pattern < 0.57 else 2.5)
        last_1h = last_10m + _poisson(rng, 2.0)
        last_24h = last_1h + _poisson(rng, 2.0)
    else:
        last_24h = _poisson(rng, 0.6)
        last_1h = _thin(rng, last_24h, 0.3)
        last_10m = _thin(rng, last_1h, 0.4)
    if age == 0.0 and last_24h > 0:
        age = rng.uniform(0.0005, 0.05)
    age, last_10m, last_1h, last_24h = _consistent(age, last_10m, last_1h, last_24h)

    card = rng.random()
    if card < 0.10:
        fingerprint = 0
    elif card < 0.45:  # one stolen card, many fresh accounts
        fingerprint = last_24h + 1 + _poisson(rng, 4.0)
    else:
        fingerprint = last_24h

    local_hour = rng.randrange(0, 6) if rng.random() < night else rng.randrange(0, 24)
    is_mismatch = method != "bank_transfer" and rng.random() < mismatch
    return _features(
        rng,
        usd,
        currency,
        method,
        (last_10m, last_1h, last_24h),
        fingerprint,
        age,
        local_hour,
        is_mismatch,
    )


def _features(
    rng: random.Random,
    usd: float,
    currency: str,
    method: str,
    counts: tuple[int, int, int],
    fingerprint: int,
    age_days: float,
    local_hour: int,
    mismatch: bool,
) -> FraudFeatures:
    offset = rng.choice(UTC_OFFSETS[currency])
    last_10m, last_1h, last_24h = counts
    return FraudFeatures(
        amount_major=_amount_major(rng, usd, currency),
        currency=currency,
        method=method,
        user_payments_10m=last_10m,
        user_payments_1h=last_1h,
        user_payments_24h=last_24h,
        fingerprint_payments_24h=fingerprint,
        user_age_days=round(age_days, 4),
        hour_of_day=(local_hour - offset) % 24,
        bin_country_mismatch=mismatch,
    )


def generate(
    n: int,
    seed: int,
    *,
    fraud_rate: float = FRAUD_RATE,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[FraudFeatures, int]]:
    """``n`` rows of (features, label: 1 for fraud), the same for the same arguments.

    ``progress`` is told how many rows are done every PROGRESS_EVERY rows and at the end.
    """
    if n < 0:
        raise ValueError(f"n must not be negative, not {n}")
    rng = random.Random(seed)
    rows: list[tuple[FraudFeatures, int]] = []
    for index in range(n):
        label = int(rng.random() < fraud_rate)
        rows.append((_fraud(rng) if label else _legit(rng), label))
        if progress is not None and (index + 1) % PROGRESS_EVERY == 0:
            progress(index + 1)
    if progress is not None and n % PROGRESS_EVERY:
        progress(n)
    return rows
