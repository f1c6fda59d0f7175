"""The learned fraud score at run time: a logistic regression read from a small JSON file.

Trained offline with scikit-learn (payments/fraud/training.py, ``payments fraud train``) and
exported as plain numbers, so the worker needs neither scikit-learn nor pickle (unpickling runs
code from the file, and breaks when the library that wrote it changes). Scoring is one dot
product of ~20 numbers: microseconds in pure Python.

The file carries what turns a FraudFeatures into numbers (currency rates, the payers' time
zones, the one-hot vocabularies) next to the weights, and this module computes those numbers
for training too: the model is served exactly the features it was trained on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from payments.fraud.features import FraudFeatures

# The shape of the JSON file; a file of another format is refused, not misread.
FORMAT = "logistic-regression/1"
PACKAGED_MODEL_NAME = "fraud-model-v1.json"

# The numbers read of every payment, before the one-hot currency and method columns.
NUMERIC_FEATURES = (
    "log_amount_usd",
    "log_user_payments_10m",
    "log_user_payments_1h",
    "log_user_payments_24h",
    "log_fingerprint_payments_24h",
    "log_user_age_days",
    "new_user",
    "local_night",
    "bin_country_mismatch",
)
# A first payment less than a day ago: accounts made to commit fraud are this young.
NEW_USER_DAYS = 1.0
# Local hours (at the currency's usual UTC offset) when a card's owner is asleep.
NIGHT_HOURS = range(0, 6)


def packaged_model_path() -> Path:
    """The model shipped in the package (in the checkout: payments/fraud/models/)."""
    return Path(__file__).resolve().parent / "models" / PACKAGED_MODEL_NAME


@dataclass(frozen=True)
class Featurizer:
    """FraudFeatures → the model's input vector.

    A currency the model does not know (trained on few) gets no one-hot column, its amount
    unconverted and UTC as its time zone: scored, roughly, rather than refused.
    """

    currencies: tuple[str, ...]
    methods: tuple[str, ...]
    # US dollars per major unit: amounts compared across currencies (100 JPY ≈ 0.67 USD).
    usd_per_major: Mapping[str, float]
    # The payers' usual UTC offset by currency, for the local hour of the payment.
    utc_offset_hours: Mapping[str, int]

    @property
    def names(self) -> tuple[str, ...]:
        return (
            *NUMERIC_FEATURES,
            *(f"currency={currency}" for currency in self.currencies),
            *(f"method={method}" for method in self.methods),
        )

    def vector(self, features: FraudFeatures) -> list[float]:
        currency = features.currency
        amount_usd = max(0.0, features.amount_major) * self.usd_per_major.get(currency, 1.0)
        local_hour = (features.hour_of_day + self.utc_offset_hours.get(currency, 0)) % 24
        age = max(0.0, features.user_age_days)
        return [
            math.log1p(amount_usd),
            math.log1p(max(0, features.user_payments_10m)),
            math.log1p(max(0, features.user_payments_1h)),
            math.log1p(max(0, features.user_payments_24h)),
            math.log1p(max(0, features.fingerprint_payments_24h)),
            math.log1p(age),
            1.0 if age < NEW_USER_DAYS else 0.0,
            1.0 if local_hour in NIGHT_HOURS else 0.0,
            1.0 if features.bin_country_mismatch else 0.0,
            *(1.0 if currency == known else 0.0 for known in self.currencies),
            *(1.0 if features.method == known else 0.0 for known in self.methods),
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "currencies": list(self.currencies),
            "methods": list(self.methods),
            "usd_per_major": dict(self.usd_per_major),
            "utc_offset_hours": dict(self.utc_offset_hours),
        }


# What training starts from (payments.vocabulary.PaymentMethod; the currencies of the training
# data, plus the rates and time zones of the other accepted ones).
DEFAULT_FEATURIZER = Featurizer(
    currencies=("USD", "EUR", "GBP", "JPY"),
    methods=("credit_card", "debit_card", "bank_transfer", "wallet"),
    usd_per_major={
        "USD": 1.0,
        "EUR": 1.08,
        "GBP": 1.27,
        "JPY": 0.0067,
        "CAD": 0.73,
        "AUD": 0.66,
        "CHF": 1.13,
        "KWD": 3.25,
    },
    utc_offset_hours={
        "USD": -6,
        "EUR": 1,
        "GBP": 0,
        "JPY": 9,
        "CAD": -5,
        "AUD": 10,
        "CHF": 1,
        "KWD": 3,
    },
)


class LearnedScore:
    """The probability that a payment is fraud, by a logistic regression over Featurizer's
    vector. Immutable and thread-safe: load once (at the worker's start), share."""

    def __init__(
        self,
        version: str,
        featurizer: Featurizer,
        mean: Sequence[float],
        scale: Sequence[float],
        coefficients: Sequence[float],
        intercept: float,
    ) -> None:
        self._version = version
        self._featurizer = featurizer
        # Standardisation folded into the weights once: w·((x - mean) / scale) + b.
        self._weights = [c / s for c, s in zip(coefficients, scale, strict=True)]
        self._bias = intercept - sum(w * m for w, m in zip(self._weights, mean, strict=True))

    @classmethod
    def load(cls, path: Path | None = None) -> LearnedScore:
        """The model in ``path`` (default: the packaged one); ValueError naming the file when
        it is not a model this code can score with."""
        path = path or packaged_model_path()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"fraud model {path}: cannot be read as JSON ({exc})") from exc
        return cls.from_json(data, source=str(path))

    @classmethod
    def from_json(cls, data: object, source: str = "<dict>") -> LearnedScore:
        """A model from the exported JSON object (what training writes); ValueError naming
        ``source`` when a field is missing or wrong."""
        return _parse(data, source)

    @property
    def version(self) -> str:
        return self._version

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._featurizer.names

    def probability(self, features: FraudFeatures) -> float:
        """0..1, calibrated on the training data's fraud rate."""
        z = self._bias + sum(
            w * x for w, x in zip(self._weights, self._featurizer.vector(features), strict=True)
        )
        # The logistic function, without overflowing exp() for very negative or positive z.
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def score(self, features: FraudFeatures) -> int:
        """0..100: the probability in percent, rounded."""
        return round(self.probability(features) * 100)


def _parse(data: object, source: str) -> LearnedScore:
    def bad(message: str) -> ValueError:
        return ValueError(f"fraud model {source}: {message}")

    if not isinstance(data, dict):
        raise bad("not a JSON object")
    if data.get("format") != FORMAT:
        raise bad(f"format is {data.get('format')!r}, this code reads {FORMAT!r}")
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise bad("no version")

    def strings(key: str) -> tuple[str, ...]:
        value = data.get(key)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise bad(f"{key} is not a list of strings")
        return tuple(value)

    def number(value: object, key: str) -> float:
        # bool is an int to Python, never a weight.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad(f"{key} holds {value!r}, not a number")
        if not math.isfinite(value):
            raise bad(f"{key} holds {value!r}")
        return float(value)

    def table(key: str) -> dict[str, float]:
        value = data.get(key)
        if not isinstance(value, dict):
            raise bad(f"{key} is not an object")
        return {str(name): number(item, key) for name, item in value.items()}

    def numbers(key: str, length: int) -> list[float]:
        value = data.get(key)
        if not isinstance(value, list) or len(value) != length:
            raise bad(f"{key} is not a list of {length} numbers")
        return [number(item, key) for item in value]

    offsets = table("utc_offset_hours")
    if any(offset != int(offset) for offset in offsets.values()):
        raise bad("utc_offset_hours holds a fraction of an hour")
    featurizer = Featurizer(
        currencies=strings("currencies"),
        methods=strings("methods"),
        usd_per_major=table("usd_per_major"),
        utc_offset_hours={name: int(offset) for name, offset in offsets.items()},
    )
    names = strings("features")
    if names != featurizer.names:
        raise bad(
            f"features {list(names)} are not the ones this code computes "
            f"{list(featurizer.names)} (retrain with `payments fraud train`)"
        )
    scale = numbers("scale", len(names))
    if any(value <= 0 for value in scale):
        raise bad("scale holds a value that is not positive")
    return LearnedScore(
        version=version,
        featurizer=featurizer,
        mean=numbers("mean", len(names)),
        scale=scale,
        coefficients=numbers("coefficients", len(names)),
        intercept=number(data.get("intercept"), "intercept"),
    )
