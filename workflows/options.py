"""Timeouts and retry policies of every activity, in one place. Each rule says why.

Workflows spread them into the call, and mypy checks the keys against the SDK's parameters:
``await workflow.execute_activity_method(LedgerActivities.plan_refund, request, **LEDGER)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import NotRequired, TypedDict

from temporalio.common import RetryPolicy

from payments.errors import ErrorTypes


class ActivityOptions(TypedDict):
    """Keyword arguments of ``workflow.execute_activity_method``."""

    start_to_close_timeout: timedelta
    retry_policy: RetryPolicy
    # Across all attempts; absent: retry until the step succeeds.
    schedule_to_close_timeout: NotRequired[timedelta]


def _retried_until_done(
    *,
    start_to_close: timedelta,
    first_retry_after: timedelta,
    longest_wait: timedelta,
    non_retryable: Sequence[str] | None = None,
) -> ActivityOptions:
    """A step that must happen: no limit on attempts, the wait between them doubling from
    ``first_retry_after`` up to ``longest_wait``. Only the ``non_retryable`` error types end
    it at once."""
    return ActivityOptions(
        start_to_close_timeout=start_to_close,
        retry_policy=RetryPolicy(
            initial_interval=first_retry_after,
            backoff_coefficient=2.0,
            maximum_interval=longest_wait,
            non_retryable_error_types=non_retryable,
        ),
    )


# Database writes are idempotent; while the database is unreachable we wait (unlimited
# attempts, backoff capped at 30 s) rather than lose the step. A refused state transition or a
# missing row cannot heal by retrying.
LEDGER = _retried_until_done(
    start_to_close=timedelta(seconds=15),
    first_retry_after=timedelta(seconds=1),
    longest_wait=timedelta(seconds=30),
    non_retryable=[ErrorTypes.INVALID_TRANSITION, ErrorTypes.PAYMENT_NOT_FOUND],
)

# Read-only checks: same retry as the ledger (runs from before fraud verdicts).
FRAUD = LEDGER


def bounded_fraud_step(timeout: timedelta) -> ActivityOptions:
    """The fraud step of a run with verdicts. It keeps its own time (activities/fraud.py):
    past ``timeout`` it answers with the policy's fail-open or fail-closed verdict, so it
    only fails (and is retried) on what no verdict can cover; the margin lets it answer."""
    return ActivityOptions(**{**FRAUD, "start_to_close_timeout": timeout + timedelta(seconds=10)})


# Gateway calls carry an idempotency key, so a retry after a timeout or a 5xx cannot charge
# twice; the outcome of a failed call is unknown, so we never conclude "failed" from it and
# retry until the gateway answers (backoff capped at 5 min; operators see the attempts in the
# Temporal UI). Bad credentials, an unknown transaction or a bug in our adapter will not heal:
# not retried.
#
# Start-to-close is the SDK's HTTP timeout (BRAINTREE_TIMEOUT_SECONDS: 10 s by default, 15 s
# at most) plus a margin of 10 s (5 s at least), so that the SDK reports a slow
# gateway first, and so that an attempt whose worker died (kill -9, lost machine) is handed to
# another worker soon: after this timeout plus the first retry interval, about 22 s, instead
# of a minute. The margin covers the other calls of the busiest activities: a retried charge
# searches the order's sales (two requests) before its sale, a refund finds the sale before
# voiding or refunding it; each takes well under a second when the gateway is healthy, so one
# call may run into the SDK's timeout and the attempt still ends here. An attempt that does
# not is only retried (every call is idempotent), never failed.
GATEWAY_START_TO_CLOSE = timedelta(seconds=20)
GATEWAY = _retried_until_done(
    start_to_close=GATEWAY_START_TO_CLOSE,
    first_retry_after=timedelta(seconds=2),
    longest_wait=timedelta(minutes=5),
    non_retryable=[
        ErrorTypes.GATEWAY_MISCONFIGURED,
        ErrorTypes.GATEWAY_NOT_FOUND,
        # The gateway refused the request itself as malformed: it would refuse it again.
        ErrorTypes.GATEWAY_REQUEST_REJECTED,
        ErrorTypes.GATEWAY_ADAPTER_BUG,
    ],
)

# The sale: retried like every gateway call while its outcome is unknown, but only for the
# life of the checkout's payment method nonce (Braintree's expire after three hours). After
# that the workflow asks the gateway once whether the sale happened, and otherwise fails the
# payment (gateway_unreachable): never a charge long after the customer has gone.
CHARGE = ActivityOptions(**GATEWAY, schedule_to_close_timeout=timedelta(hours=3))

# Publishing waits for the broker's acknowledgement; while Kafka is down the step is retried
# (capped at 30 s) so that every status change is announced once the broker is back.
EVENTS = _retried_until_done(
    start_to_close=timedelta(seconds=30),
    first_retry_after=timedelta(seconds=1),
    longest_wait=timedelta(seconds=30),
)

# The Order Service is told every terminal outcome; while it is down we keep trying (capped at
# one minute), since the order must not stay "awaiting payment" after a successful payment.
# It refusing the update (4xx) cannot heal: not retried, and visible in the history.
ORDERS = _retried_until_done(
    start_to_close=timedelta(seconds=30),
    first_retry_after=timedelta(seconds=1),
    longest_wait=timedelta(minutes=1),
    non_retryable=[ErrorTypes.ORDER_UPDATE_REJECTED],
)

# Vaulting a payment method: the same retries as every gateway call, but a customer is waiting
# to save a card, so after ten minutes without an answer the vault is given up (the method is
# marked failed; the customer tokenizes again). Nothing was charged. The deadline may cut an
# attempt mid-call: the workflow then deletes whatever was vaulted under its token.
VAULT = ActivityOptions(**GATEWAY, schedule_to_close_timeout=timedelta(minutes=10))
