"""Handling one ``payment_initiation`` message: decode, validate, start the payment.

Separate from the consumer loop (workers/consumer.py) so it can be tested alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import structlog
from pydantic import ValidationError

from payments.errors import InvalidRequest
from payments.requests import PaymentInitiationMessage
from payments.service import InitiatePayment, PaymentService

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class MessageRef:
    topic: str
    partition: int
    offset: int

    def fallback_key(self) -> str:
        """A message without an idempotency_key is keyed by its place in the log, so that a
        redelivery of the same message still starts nothing new."""
        return f"kafka:{self.topic}:{self.partition}:{self.offset}"


async def handle_initiation(service: PaymentService, ref: MessageRef, value: bytes) -> str | None:
    """Start the payment the message asks for; returns its payment_id, or None when the
    message is invalid (logged and skipped: retrying cannot fix it). Infrastructure errors
    propagate so that the caller retries the same message."""
    try:
        message = PaymentInitiationMessage.model_validate(json.loads(value))
    except (ValueError, ValidationError) as exc:
        problems = (
            [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            if isinstance(exc, ValidationError)
            else ["not valid JSON"]
        )
        log.warning("payment_initiation message rejected", offset=ref.offset, problems=problems)
        return None
    try:
        payment, created = await service.initiate_payment(
            InitiatePayment(
                order_id=message.order_id,
                user_id=message.user_id,
                amount=message.amount,
                currency=message.currency,
                payment_method=message.payment_method,
                payment_token=message.payment_token,
                idempotency_key=message.idempotency_key or ref.fallback_key(),
                payment_method_id=message.payment_method_id,
                retry=message.retry,
                source="consumer",
            )
        )
    except InvalidRequest as exc:
        log.warning(
            "payment_initiation message rejected",
            offset=ref.offset,
            problems=[f"{exc.field}: {exc.message}"],
        )
        return None
    log.info(
        "payment_initiation message handled",
        offset=ref.offset,
        payment_id=payment.payment_id,
        duplicate=not created,
    )
    return payment.payment_id
