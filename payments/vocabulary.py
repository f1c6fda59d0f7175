"""The statuses of payments, refunds and saved payment methods.

Plain StrEnums with no library behind them: the tables store them, the API and the events
show them, and activities compare with them, which workflow code imports (so this module
must never pull in the database, gateway or Kafka libraries).
"""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"


class RefundStatus(StrEnum):
    INITIATED = "initiated"
    PROCESSED = "processed"
    FAILED = "failed"


class VaultStatus(StrEnum):
    PENDING = "pending"  # the gateway has not answered yet
    ACTIVE = "active"
    FAILED = "failed"  # the gateway refused the nonce
