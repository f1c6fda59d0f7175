"""Error types of the payment service.

One root class, subclasses that mean something to a caller. Each class carries what a caller
needs to act on it, as stripe-python's errors do: ``code`` (the ``type`` of the API's error
body), ``http_status`` (the API's answer) and ``retryable`` (whether the same request may
succeed later, unchanged). Nothing else maps errors to statuses. ``ApplicationError.type``
strings that cross the Temporal boundary are defined here too, so workflows and activities
agree on them without matching on messages.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import ClassVar


class PaymentServiceError(Exception):
    """Root of every error this service raises on purpose. One that reaches the API without
    a status of its own is a bug: a bare 500."""

    code: ClassVar[str] = "payment_service_error"
    http_status: ClassVar[int] = HTTPStatus.INTERNAL_SERVER_ERROR
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# --- client mistakes (the API maps these to 4xx) ---------------------------------------------
class InvalidRequest(PaymentServiceError):
    code = "invalid_request"
    http_status = HTTPStatus.UNPROCESSABLE_ENTITY


class InvalidAmount(InvalidRequest):
    code = "invalid_amount"


class UnsupportedCurrency(InvalidRequest):
    code = "unsupported_currency"


class NotFound(PaymentServiceError):
    code = "not_found"
    http_status = HTTPStatus.NOT_FOUND


class Conflict(PaymentServiceError):
    """The request is well-formed but the resource's state does not allow it."""

    code = "conflict"
    http_status = HTTPStatus.CONFLICT


class IdempotencyKeyReused(PaymentServiceError):
    """The same Idempotency-Key was sent with a different request body."""

    code = "idempotency_key_reused"
    http_status = HTTPStatus.UNPROCESSABLE_ENTITY


class RefundNotAllowed(Conflict):
    code = "refund_not_allowed"


class UnknownMerchant(InvalidRequest):
    """A payment_initiation message (or a request) naming a merchant that does not exist."""

    code = "unknown_merchant"


class CardNumberNotAllowed(InvalidRequest):
    """A field holds what looks like a card number. The service never takes card data: the
    checkout tokenizes cards with the gateway's client SDK and sends the nonce."""

    code = "card_number_not_allowed"


class InvalidCharacters(InvalidRequest):
    """Control characters (or, for tokens and ids, anything but printable ASCII)."""

    code = "invalid_characters"


class RateChangeTooLarge(InvalidRequest):
    """An exchange rate far from the pair's previous one, without an explicit override."""

    code = "rate_change_too_large"


# --- access (the API maps these to 401, 403, 413, 429) ---------------------------------------
class Unauthenticated(PaymentServiceError):
    """No API key, or one that is unknown, malformed or revoked (never said which)."""

    code = "unauthenticated"
    http_status = HTTPStatus.UNAUTHORIZED


class Forbidden(PaymentServiceError):
    """A valid key whose role may not do this."""

    code = "forbidden"
    http_status = HTTPStatus.FORBIDDEN


class PayloadTooLarge(PaymentServiceError):
    code = "payload_too_large"
    http_status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class RateLimited(PaymentServiceError):
    code = "rate_limited"
    http_status = HTTPStatus.TOO_MANY_REQUESTS
    retryable = True

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class RefundExceedsRemainder(RefundNotAllowed):
    code = "refund_exceeds_remainder"
    http_status = HTTPStatus.UNPROCESSABLE_ENTITY


# --- the state machine (the repository refuses these; activities make them non-retryable) ---
class InvalidTransition(PaymentServiceError):
    """A status change the state machine does not allow (e.g. failure → success)."""

    code = "invalid_transition"

    def __init__(self, message: str, *, payment_id: str | None = None) -> None:
        super().__init__(message)
        self.payment_id = payment_id


# --- infrastructure (the API maps these to 503) ------------------------------------------------
class ServiceUnavailable(PaymentServiceError):
    code = "service_unavailable"
    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    retryable = True


class NotSent(ServiceUnavailable):
    """A dependency could not even be reached: the request was certainly not carried out
    (unlike a timeout, whose outcome is unknown)."""


# --- gateway ------------------------------------------------------------------------------------
class GatewayError(PaymentServiceError):
    """Base of errors talking to the payment gateway (not declines: those are results)."""

    code = "gateway_error"
    http_status = HTTPStatus.SERVICE_UNAVAILABLE


class GatewayUnavailable(GatewayError):
    """Timeout, dropped connection, 5xx, 408, 429: the outcome is unknown, retry is safe
    because every gateway write carries an idempotency key (api_request_key)."""

    code = "gateway_unavailable"
    retryable = True


class GatewayMisconfigured(GatewayError):
    """Authentication, authorization, an outdated API version: retrying cannot help."""

    code = "gateway_misconfigured"


class GatewayAdapterBug(GatewayError):
    """A programming error in the service's own gateway code (an AttributeError, KeyError or
    TypeError raised by the adapter, or the SDK refusing arguments the adapter built), as
    opposed to the SDK failing to read a malformed answer. The same call fails the same way
    every time: never retried, logged as a bug."""

    code = "gateway_adapter_bug"
    http_status = HTTPStatus.INTERNAL_SERVER_ERROR


class GatewayNotFound(GatewayError):
    code = "gateway_not_found"
    # The gateway does not know the transaction: not the client's mistake, and not an
    # outage that a retry would cure.
    http_status = HTTPStatus.BAD_GATEWAY


class InvalidWebhook(InvalidRequest):
    """A webhook whose signature does not verify (or that cannot be decoded)."""

    code = "invalid_webhook"
    http_status = HTTPStatus.BAD_REQUEST


class StaleWebhook(InvalidWebhook):
    """A webhook notification older than the accepted window (a captured one, replayed)."""

    code = "stale_webhook"


# ApplicationError.type values: activities raise, workflows and retry policies match on these.
class ErrorTypes:
    GATEWAY_MISCONFIGURED = "GatewayMisconfigured"
    GATEWAY_NOT_FOUND = "GatewayNotFound"
    PAYMENT_NOT_FOUND = "PaymentNotFound"
    INVALID_TRANSITION = "InvalidTransition"
    ORDER_UPDATE_REJECTED = "OrderUpdateRejected"
    # A payment asks for the order update, but this worker has no ORDER_SERVICE_URL.
    ORDER_SERVICE_NOT_CONFIGURED = "OrderServiceNotConfigured"
    # The gateway answered that the request itself is wrong (GatewayRequestRejected): the
    # same request fails the same way again, so it is never retried. Equal to the class name,
    # which is the type Temporal gives the exception when it escapes an activity unwrapped.
    GATEWAY_REQUEST_REJECTED = "GatewayRequestRejected"
    # A saved payment method whose stored gateway token no configured key decrypts.
    PAYMENT_METHOD_UNREADABLE = "PaymentMethodUnreadable"
    # A bug in the gateway adapter (GatewayAdapterBug, the class name as above): retrying
    # runs the same code into the same error.
    GATEWAY_ADAPTER_BUG = "GatewayAdapterBug"


class GatewayRequestRejected(GatewayError):
    """The gateway refused the request as malformed: a 4xx other than 401/403/404/408/426/429,
    or a 422 without the error document the SDK reads (400 for control characters in a
    field, 413, 415...). Nothing was done at the gateway and the same request will be refused
    again: permanent, never an outage, never retried. ``status`` is the HTTP status."""

    code = "gateway_request_rejected"
    # Our request, refused as malformed: not the client's mistake, not an outage.
    http_status = HTTPStatus.BAD_GATEWAY

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status
