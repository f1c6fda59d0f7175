"""Each error carries its HTTP status and whether a retry may succeed (nothing maps them
elsewhere), and a subclass can differ from its parent without an order-dependent chain."""

from __future__ import annotations

import pytest

from api.errors import domain_error_response
from payments import errors


@pytest.mark.parametrize(
    ("error", "status", "retryable"),
    [
        (errors.InvalidAmount("bad"), 422, False),
        (errors.IdempotencyKeyReused("other body"), 422, False),
        (errors.NotFound("gone"), 404, False),
        (errors.Conflict("paid"), 409, False),
        (errors.RefundNotAllowed("not captured"), 409, False),
        # A subclass of a 409 that is the client's arithmetic, not the resource's state.
        (errors.RefundExceedsRemainder("too much"), 422, False),
        (errors.InvalidWebhook("bad signature"), 400, False),
        (errors.StaleWebhook("old"), 400, False),
        (errors.Unauthenticated("no key"), 401, False),
        (errors.Forbidden("role"), 403, False),
        (errors.PayloadTooLarge("big"), 413, False),
        (errors.RateLimited("slow down", retry_after_seconds=3), 429, True),
        (errors.ServiceUnavailable("db down"), 503, True),
        (errors.GatewayUnavailable("timeout"), 503, True),
        (errors.GatewayMisconfigured("bad keys"), 503, False),
        (errors.GatewayNotFound("no such transaction"), 502, False),
        (errors.GatewayRequestRejected("malformed", status=400), 502, False),
        (errors.PaymentServiceError("a bug"), 500, False),
    ],
)
def test_each_error_carries_its_status_and_retryability(
    error: errors.PaymentServiceError, status: int, retryable: bool
) -> None:
    assert (error.http_status, error.retryable) == (status, retryable)
    assert domain_error_response(error).status_code == status


def test_answers_say_when_to_come_back() -> None:
    assert domain_error_response(errors.Unauthenticated("no key")).headers["WWW-Authenticate"] == (
        "Bearer"
    )
    limited = errors.RateLimited("slow down", retry_after_seconds=7)
    assert domain_error_response(limited).headers["Retry-After"] == "7"
    assert domain_error_response(errors.ServiceUnavailable("down")).headers["Retry-After"] == "5"
