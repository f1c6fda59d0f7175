"""What the learned score reads of a payment: its own facts and its payer's recent history.

The same record is built by the fraud step (from the payment and the database's velocity
counts) and by the training data generator (devtools/fraud_dataset.py), so the model sees in
production exactly the features it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FraudFeatures:
    # The amount in major units of its currency (12.50 for 1250 USD cents), and the currency.
    amount_major: float
    currency: str
    # payments.vocabulary.PaymentMethod: credit_card, debit_card, bank_transfer, wallet.
    method: str
    # The user's payments (any status, this one excluded) in the last 10 minutes, hour, day.
    user_payments_10m: int
    user_payments_1h: int
    user_payments_24h: int
    # Payments with the same payment-method fingerprint in the last day (0 when unknown).
    fingerprint_payments_24h: int
    # Days since the user's first payment; 0.0 for a user paying for the first time.
    user_age_days: float
    # Hour of the day (UTC, 0-23) the payment started.
    hour_of_day: int
    # The card's issuing country (from its BIN) is not a country of the payment's currency.
    bin_country_mismatch: bool
