"""Status updates on ``payment_status`` from outside this service (the blueprint's
verification step: e.g. a gateway connector announcing that a transaction settled).

Such a message is a hint, never the outcome: the pending payment's workflow is asked to check
the gateway now, and the gateway's answer decides. Our own events (header
``producer: payment-service``) are skipped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Protocol

import structlog

from payments.db.repositories.payments import PaymentRepository
from payments.events.publisher import PRODUCER
from payments.vocabulary import PaymentStatus

log = structlog.get_logger(__name__)


class Nudger(Protocol):
    async def nudge_payment(self, payment_id: str) -> bool: ...


async def handle_status_update(
    payments: PaymentRepository,
    workflows: Nudger,
    headers: Sequence[tuple[str, bytes]],
    value: bytes,
) -> str | None:
    """Returns the payment_id nudged, or None (ours, unknown, malformed or not pending)."""
    if any(k == "producer" and v == PRODUCER.encode() for k, v in headers):
        return None
    try:
        message = json.loads(value)
        if not isinstance(message, dict):
            raise ValueError("not an object")
    except ValueError:
        log.warning("payment_status message ignored: not a JSON object")
        return None
    payment = None
    if isinstance(message.get("payment_id"), str):
        payment = await asyncio.to_thread(payments.get, message["payment_id"])
    elif isinstance(message.get("transaction_id"), str):
        payment = await asyncio.to_thread(payments.find_by_transaction, message["transaction_id"])
    if payment is None or payment.payment_status != PaymentStatus.PENDING:
        return None
    nudged = await workflows.nudge_payment(payment.payment_id)
    log.info(
        "external status update",
        payment_id=payment.payment_id,
        claimed_status=str(message.get("status")),
        nudged=nudged,
    )
    return payment.payment_id if nudged else None
