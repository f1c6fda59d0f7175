"""The Order Service: what this service needs from it, and an HTTP client for it.

Used only when ``ORDER_SERVICE_URL`` is set. Initiation reads the order (it must await payment,
belong to the user, and it decides amount and currency); a terminal payment writes the outcome
back, from an activity that Temporal retries.

REST contract (ours to define; ``devtools.order_service`` implements it):

``GET {url}/orders/{order_id}``
    200 ``{"order_id": "...", "user_id": "...", "status": "awaiting_payment",
    "amount": "49.99", "currency": "USD"}`` (amount a decimal string in major units, never a
    JSON number; extra keys are ignored), or 404 when there is no such order.
    Statuses: ``awaiting_payment``, ``paid``, ``payment_failed``, ``cancelled``.

``PUT {url}/orders/{order_id}/payment``
    body ``{"payment_id": "...", "payment_status": "success" | "failure", "event_id": "..."}``;
    200 or 204 (any 2xx) when recorded. Idempotent by ``event_id`` on the Order Service's side:
    a repeat answers 2xx and changes nothing. 404 for an unknown order.

Errors, as the callers see them:

- connection errors, timeouts, 408, 429 and 5xx → ``ServiceUnavailable``: transient, safe to
  retry (a GET reads; a PUT repeats the same ``event_id``);
- an order body that does not match the contract → ``ServiceUnavailable`` saying what is wrong
  (a deploy on the other side, not the client's fault; the API answers 503);
- ``GET``: 404 → ``None``; any other status → ``ServiceUnavailable``;
- ``PUT``: any other 4xx → ``OrderUpdateRejected``: the Order Service refuses this update and
  repeating it cannot change that, so it must not be retried.

Messages name the order and the URL without credentials; nothing here logs request bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol
from urllib.parse import quote

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from payments.config import OrderServiceSettings
from payments.errors import PaymentServiceError, ServiceUnavailable
from payments.money import Money

log = structlog.get_logger(__name__)

# What the Order Service's contract says of a payment: its end (PaymentStatus values), never
# "pending".
PaymentResult = Literal["success", "failure"]

# Statuses worth retrying: the request may well succeed later. 408/429 are the server asking
# us to come back; 5xx is its own failure. Everything else 4xx is an answer about this request.
_TRANSIENT_STATUSES = frozenset({408, 429})
# How much of an error body goes into a message: enough to read the Order Service's reason.
_BODY_EXCERPT_CHARS = 200


class OrderStatus(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"
    CANCELLED = "cancelled"


class OrderUpdateRejected(PaymentServiceError):
    """The Order Service answered a 4xx (other than 408/429) to a payment update: unknown
    order, or an update it will not accept. Not retryable: the same request gets the same
    answer. The payment itself stands; the order needs a person's look."""

    code = "order_update_rejected"

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the Order Service reports it.

    ``status`` is one of OrderStatus, or a status this service does not know yet (kept as
    is, and not payable).
    """

    order_id: str
    user_id: str
    status: str
    amount: Money


class OrderService(Protocol):
    async def get_order(self, order_id: str) -> Order | None:
        """The order, or None if the Order Service does not know it.
        Raises ServiceUnavailable when it cannot be asked (retryable)."""
        ...

    async def record_payment(
        self, order_id: str, payment_id: str, payment_status: PaymentResult, event_id: str
    ) -> None:
        """Record a payment's terminal outcome on the order. Idempotent by ``event_id``.
        Raises ServiceUnavailable (retryable) or OrderUpdateRejected (not retryable)."""
        ...


class _OrderBody(BaseModel):
    """GET /orders/{order_id}'s body. Strict strings: an amount sent as a JSON number (a
    float) is a contract violation, not something to round."""

    model_config = ConfigDict(extra="ignore", strict=True)

    order_id: str
    user_id: str
    status: str
    amount: str
    currency: str


def create_order_service_http_client(settings: OrderServiceSettings) -> httpx.AsyncClient:
    """The AsyncClient for HttpOrderService, for a composition root to build and close."""
    return httpx.AsyncClient(
        timeout=settings.timeout_seconds, headers={"Accept": "application/json"}
    )


def build_order_service(settings: OrderServiceSettings) -> HttpOrderService | None:
    """The Order Service the settings name, None without ORDER_SERVICE_URL: built once by a
    composition root, which closes it (``aclose``) when the process stops."""
    if settings.url is None:
        return None
    return HttpOrderService(create_order_service_http_client(settings), settings.url)


class HttpOrderService:
    """OrderService over HTTP (the module docstring has the contract). ``client``'s timeout
    bounds every request; ``aclose`` closes it, for whoever built the two."""

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._display_url = _without_credentials(self._base_url)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get_order(self, order_id: str) -> Order | None:
        response = await self._send("GET", order_id, f"/orders/{_segment(order_id)}")
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if response.status_code != httpx.codes.OK:
            raise ServiceUnavailable(
                f"order service at {self._display_url} answered {response.status_code} "
                f"to GET order {order_id}{_excerpt(response)}"
            )
        return self._parse_order(order_id, response)

    async def record_payment(
        self, order_id: str, payment_id: str, payment_status: PaymentResult, event_id: str
    ) -> None:
        response = await self._send(
            "PUT",
            order_id,
            f"/orders/{_segment(order_id)}/payment",
            json={"payment_id": payment_id, "payment_status": payment_status, "event_id": event_id},
        )
        if response.is_success:
            log.info(
                "order payment recorded",
                order_id=order_id,
                payment_id=payment_id,
                payment_status=payment_status,
                event_id=event_id,
            )
            return
        if 400 <= response.status_code < 500:
            raise OrderUpdateRejected(
                f"order service at {self._display_url} refused the payment update of order "
                f"{order_id} with {response.status_code}{_excerpt(response)}",
                status_code=response.status_code,
            )
        # 3xx (a redirect we do not follow: a misconfigured URL) or anything else unexpected.
        raise ServiceUnavailable(
            f"order service at {self._display_url} answered {response.status_code} to the "
            f"payment update of order {order_id}"
        )

    async def _send(
        self, method: str, order_id: str, path: str, *, json: object | None = None
    ) -> httpx.Response:
        """One request; transport failures and transient statuses become ServiceUnavailable."""
        try:
            response = await self._client.request(method, self._base_url + path, json=json)
        except httpx.TimeoutException as exc:
            raise ServiceUnavailable(
                f"order service at {self._display_url} timed out ({method} order {order_id})"
            ) from exc
        except httpx.TransportError as exc:
            raise ServiceUnavailable(
                f"order service at {self._display_url} is unreachable ({method} order "
                f"{order_id}): {type(exc).__name__}"
            ) from exc
        if response.status_code >= 500 or response.status_code in _TRANSIENT_STATUSES:
            raise ServiceUnavailable(
                f"order service at {self._display_url} answered {response.status_code} "
                f"({method} order {order_id}); retry later"
            )
        return response

    def _parse_order(self, order_id: str, response: httpx.Response) -> Order:
        malformed = f"order service at {self._display_url} sent a malformed order {order_id}"
        try:
            body = _OrderBody.model_validate_json(response.content)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                for e in exc.errors(include_input=False)
            )
            raise ServiceUnavailable(f"{malformed}: {problems}") from None
        if body.order_id != order_id:
            raise ServiceUnavailable(f"{malformed}: it answered with order {body.order_id!r}")
        try:
            amount = Money.parse(body.amount, body.currency.upper())
        except PaymentServiceError as exc:
            raise ServiceUnavailable(f"{malformed}: {exc.message}") from None
        return Order(
            order_id=body.order_id, user_id=body.user_id, status=body.status, amount=amount
        )


def _segment(value: str) -> str:
    """An id as one path segment: "/" or "?" in an id must not change the route."""
    return quote(value, safe="")


def _without_credentials(url: str) -> str:
    """The URL as messages may show it: no user:password@, no query string."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None, query=None, fragment=None))


def _excerpt(response: httpx.Response) -> str:
    text = response.text.strip()
    if not text:
        return ""
    if len(text) > _BODY_EXCERPT_CHARS:
        text = text[:_BODY_EXCERPT_CHARS] + "…"
    return f": {text}"
