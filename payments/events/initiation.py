"""Handling one ``payment_initiation`` message: decode, validate, start the payment.

Separate from the consumer loop (workers/consumer.py) so it can be tested alone. A message
either starts (or finds, by its idempotency key) its payment, or is *rejected*: it can never
succeed, whatever is retried (not JSON, invalid fields, no idempotency key, a conflicting key,
an order already paid or not payable, an unknown merchant, a card number, a null value). The
consumer dead-letters rejections and moves on; only infrastructure errors (database, Temporal
unreachable) propagate, so that the same message is tried again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from payments.card_data import contains_card_number, first_card_number_path
from payments.errors import (
    CardNumberNotAllowed,
    Conflict,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
    PaymentServiceError,
)
from payments.requests import PaymentInitiationMessage
from payments.service import InitiatePayment, PaymentService

log = structlog.get_logger(__name__)

# Domain errors that no retry can fix: the message itself is wrong for this service.
PERMANENT_ERRORS: tuple[type[PaymentServiceError], ...] = (
    InvalidRequest,
    IdempotencyKeyReused,
    Conflict,
    NotFound,
)


@dataclass(frozen=True)
class MessageRef:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Rejection:
    """Why a message can never start a payment. ``message`` never holds a card number."""

    error_type: str
    message: str


async def handle_initiation(
    service: PaymentService, ref: MessageRef, value: bytes | None, *, default_merchant_id: str
) -> str | Rejection:
    """Start the payment the message asks for; returns its payment_id, or the Rejection of a
    message that can never succeed. Infrastructure errors propagate (the caller retries the
    same message)."""
    rejection = _inspect(value)
    if isinstance(rejection, Rejection):
        return _rejected(ref, rejection)
    message = rejection
    try:
        payment, created = await service.initiate_payment(
            InitiatePayment(
                merchant_id=message.merchant_id or default_merchant_id,
                order_id=message.order_id,
                user_id=message.user_id,
                amount=message.amount,
                currency=message.currency,
                payment_method=message.payment_method,
                payment_token=message.payment_token,
                idempotency_key=message.idempotency_key,
                payment_method_id=message.payment_method_id,
                retry=message.retry,
                source="consumer",
            )
        )
    except PERMANENT_ERRORS as exc:
        text = f"{exc.field}: {exc.message}" if exc.field else exc.message
        return _rejected(ref, Rejection(exc.code, text))
    log.info(
        "payment_initiation message handled",
        partition=ref.partition,
        offset=ref.offset,
        payment_id=payment.payment_id,
        duplicate=not created,
    )
    return payment.payment_id


def _inspect(value: bytes | None) -> PaymentInitiationMessage | Rejection:
    """The validated message, or why it is refused before the service sees it."""
    if value is None:
        return Rejection("null_message", "the message has no value (a tombstone)")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection("not_json", "the message is not UTF-8 JSON")
    try:
        decoded: Any = json.loads(text)
    except ValueError:
        if contains_card_number(text):
            return _card_number("value")
        return Rejection("not_json", "the message is not valid JSON")
    path = first_card_number_path(decoded)
    if path is not None:
        return _card_number("value" if path == "$" else path)
    if not isinstance(decoded, dict):
        return Rejection("invalid_fields", "the message is not a JSON object")
    try:
        return PaymentInitiationMessage.model_validate(decoded)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors()
        ]
        return Rejection("invalid_fields", "; ".join(problems))


def _card_number(path: str) -> Rejection:
    return Rejection(
        CardNumberNotAllowed.code,
        f"{path} looks like a card number: card data is never accepted, send a gateway nonce",
    )


def _rejected(ref: MessageRef, rejection: Rejection) -> Rejection:
    log.warning(
        "payment_initiation message rejected",
        partition=ref.partition,
        offset=ref.offset,
        error_type=rejection.error_type,
        problem=rejection.message,
    )
    return rejection
