"""Error types of the payment service.

One root class, subclasses that mean something to a caller. ``ApplicationError.type`` strings
that cross the Temporal boundary are defined here, so workflows and activities agree on them
without matching on messages.
"""

from __future__ import annotations


class PaymentServiceError(Exception):
    """Root of every error this service raises on purpose."""

    code = "payment_service_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# --- client mistakes (the API maps these to 4xx) ---------------------------------------------
class InvalidRequest(PaymentServiceError):
    code = "invalid_request"


class InvalidAmount(InvalidRequest):
    code = "invalid_amount"


class UnsupportedCurrency(InvalidRequest):
    code = "unsupported_currency"


class NotFound(PaymentServiceError):
    code = "not_found"


class Conflict(PaymentServiceError):
    """The request is well-formed but the resource's state does not allow it."""

    code = "conflict"


class IdempotencyKeyReused(PaymentServiceError):
    """The same Idempotency-Key was sent with a different request body."""

    code = "idempotency_key_reused"


class RefundNotAllowed(Conflict):
    code = "refund_not_allowed"


class RefundExceedsRemainder(RefundNotAllowed):
    code = "refund_exceeds_remainder"


# --- infrastructure (the API maps these to 503) ------------------------------------------------
class ServiceUnavailable(PaymentServiceError):
    code = "service_unavailable"


class NotSent(ServiceUnavailable):
    """A dependency could not even be reached: the request was certainly not carried out
    (unlike a timeout, whose outcome is unknown)."""


# --- gateway ------------------------------------------------------------------------------------
class GatewayError(PaymentServiceError):
    """Base of errors talking to the payment gateway (not declines: those are results)."""

    code = "gateway_error"


class GatewayUnavailable(GatewayError):
    """Timeout, dropped connection, 5xx, 408, 429: the outcome is unknown, retry is safe
    because every gateway write carries an idempotency key (api_request_key)."""

    code = "gateway_unavailable"


class GatewayMisconfigured(GatewayError):
    """Authentication, authorization, an outdated API version: retrying cannot help."""

    code = "gateway_misconfigured"


class GatewayNotFound(GatewayError):
    code = "gateway_not_found"


class InvalidWebhook(InvalidRequest):
    """A webhook whose signature does not verify (or that cannot be decoded)."""

    code = "invalid_webhook"


# ApplicationError.type values: activities raise, workflows and retry policies match on these.
class ErrorTypes:
    GATEWAY_MISCONFIGURED = "GatewayMisconfigured"
    GATEWAY_NOT_FOUND = "GatewayNotFound"
    PAYMENT_NOT_FOUND = "PaymentNotFound"
    INVALID_TRANSITION = "InvalidTransition"
    ORDER_UPDATE_REJECTED = "OrderUpdateRejected"
