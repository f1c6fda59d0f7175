"""The failures an activity reports as final: Temporal does not retry them."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError


def non_retryable(message: str, error_type: str) -> ApplicationError:
    """An error no retry can heal (a refused transition, a missing row, credentials the
    gateway refuses), whatever the activity's retry policy says. ``error_type`` is one of
    ``payments.errors.ErrorTypes``, which workflows and retry policies match on."""
    return ApplicationError(message, type=error_type, non_retryable=True)
