"""Widths of the string columns that hold what others send: the gateway's answers and the
API's input.

PostgreSQL refuses a value longer than its column (a DataError: an activity retried for ever,
an API answering 500) where SQLite stores it. So the tables (``payments.db.models``) take
their widths from here, and so do the two edges that fill them: the gateway adapter cuts
what the gateway says to these widths, the API refuses longer input with a 422. Widths count
characters, as both PostgreSQL's VARCHAR and Python's ``len`` do.
"""

from __future__ import annotations

from typing import Final

# What the gateway says about a sale, a refund or a saved payment method.
PROCESSOR_RESPONSE_CODE: Final = 16
GATEWAY_STATUS: Final = 32
FAILURE_REASON: Final = 64
FAILURE_MESSAGE: Final = 255
VAULT_FAILURE_CODE: Final = 32
WEBHOOK_KIND: Final = 64
# What a user recognises of the means of payment (InstrumentDetails).
INSTRUMENT_TYPE: Final = 32
BRAND: Final = 32
LAST4: Final = 4
EXPIRATION: Final = 7
WALLET: Final = 32
INSTRUMENT_DISPLAY: Final = 128
# The audit trail explains, it does not archive: longer details are cut.
AUDIT_DETAIL: Final = 500

# What the API and the payment_initiation messages bring.
CHECKOUT_ID: Final = 128  # order and user ids
REASON: Final = 255
IDEMPOTENCY_KEY: Final = 255
EXCHANGE_RATE: Final = 32
# Fraud: a blocklisted value (user id, fingerprint, BIN) and an operator's review note.
BLOCKLIST_VALUE: Final = 128
REVIEW_NOTE: Final = 500


def cut(value: str | None, width: int) -> str | None:
    """``value`` shortened to ``width`` characters (None stays None)."""
    return None if value is None else value[:width]
