"""Gateway webhooks: Braintree tells us when a transaction settles or is declined later.

No API key (Braintree cannot send one): the signature, verified with the SDK, is the
authentication. On top of it, a notification older than API_WEBHOOK_MAX_AGE_SECONDS is
refused (a captured one replayed later), and a notification already handled is a no-op (a
replay within the window). Nothing a webhook says is believed: it only makes a pending
payment's workflow (or the refunds waiting for a paid payment's sale to settle) ask the
gateway now.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Request

from api.deps import (
    ContainerDep,
    GatewayDep,
    PaymentsDep,
    RefundsDep,
    WebhookReceiptsDep,
    WorkflowsDep,
)
from api.errors import ERRORS
from payments.errors import InvalidWebhook, StaleWebhook
from payments.vocabulary import PaymentStatus

router = APIRouter(tags=["webhooks"])
log = structlog.get_logger(__name__)

# A notification stamped this far in the future is refused too (clocks differ a little).
_CLOCK_SKEW = timedelta(minutes=1)


@router.post("/webhooks/braintree", responses=ERRORS)
async def braintree_webhook(
    request: Request,
    gateway: GatewayDep,
    payments: PaymentsDep,
    refunds: RefundsDep,
    receipts: WebhookReceiptsDep,
    workflows: WorkflowsDep,
    container: ContainerDep,
) -> dict[str, str]:
    """Verifies the signature with the SDK, refuses stale notifications, ignores replays,
    then nudges the payment's workflow to check the gateway now. The webhook itself is never
    trusted as the outcome: the workflow reads the transaction from the gateway."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    signature = form.get("bt_signature", [""])[0]
    payload = form.get("bt_payload", [""])[0]
    if not signature or not payload:
        raise InvalidWebhook("bt_signature and bt_payload are required", field="bt_signature")
    event = await asyncio.to_thread(gateway.parse_webhook, signature, payload)

    max_age = timedelta(seconds=container.settings.api.webhook_max_age_seconds)
    now = datetime.now(UTC)
    sent_at = _timestamp(event.timestamp)
    if sent_at is None or sent_at < now - max_age or sent_at > now + _CLOCK_SKEW:
        log.warning("webhook refused: stale", kind=event.kind, timestamp=event.timestamp)
        raise StaleWebhook(
            f"notifications older than {int(max_age.total_seconds())} s are refused",
            field="bt_payload",
        )
    digest = hashlib.sha256(f"{signature}|{payload}".encode()).hexdigest()
    first = await asyncio.to_thread(
        lambda: receipts.record(digest, event.kind, keep_after=now - 2 * max_age)
    )
    if not first:
        log.info("webhook replay ignored", kind=event.kind)
        return {"status": "duplicate", "kind": event.kind}
    try:
        return await _nudge(event.kind, event.transaction_id, payments, refunds, workflows)
    except BaseException:
        # Not handled (the database or Temporal failed): Braintree sends it again, and that
        # delivery must not pass for a replay.
        await asyncio.to_thread(receipts.forget, digest)
        raise


async def _nudge(
    kind: str,
    transaction_id: str | None,
    payments: PaymentsDep,
    refunds: RefundsDep,
    workflows: WorkflowsDep,
) -> dict[str, str]:
    """A pending payment checks its sale now; the refunds of a paid one that wait for the
    sale to settle try now. Anything else: nothing to wake."""
    if transaction_id is None:
        return {"status": "ignored", "kind": kind}
    payment = await asyncio.to_thread(payments.find_by_transaction, transaction_id)
    if payment is None:
        return {"status": "ignored", "kind": kind}
    if payment.payment_status == PaymentStatus.PENDING:
        nudged = await workflows.nudge_payment(payment.payment_id)
        log.info("webhook received", kind=kind, payment_id=payment.payment_id, nudged=nudged)
        return {"status": "accepted", "kind": kind}
    waiting = await asyncio.to_thread(refunds.initiated_ids, payment.payment_id)
    if payment.payment_status != PaymentStatus.SUCCESS or not waiting:
        return {"status": "ignored", "kind": kind}
    for refund_id in waiting:
        nudged = await workflows.nudge_refund(refund_id)
        log.info("webhook received", kind=kind, refund_id=refund_id, nudged=nudged)
    return {"status": "accepted", "kind": kind}


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
