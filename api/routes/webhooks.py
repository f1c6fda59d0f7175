"""Gateway webhooks: Braintree tells us when a transaction settles or is declined later."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Request

from api.deps import GatewayDep, RepositoryDep, WorkflowsDep
from payments.db.models import PaymentStatus
from payments.errors import InvalidWebhook

router = APIRouter(tags=["webhooks"])
log = structlog.get_logger(__name__)


@router.post("/webhooks/braintree")
async def braintree_webhook(
    request: Request, gateway: GatewayDep, repository: RepositoryDep, workflows: WorkflowsDep
) -> dict[str, str]:
    """Verifies the signature with the SDK, then nudges the payment's workflow to check the
    gateway now. The webhook itself is never trusted as the outcome: the workflow reads the
    transaction from the gateway."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    signature = form.get("bt_signature", [""])[0]
    payload = form.get("bt_payload", [""])[0]
    if not signature or not payload:
        raise InvalidWebhook("bt_signature and bt_payload are required", field="bt_signature")
    event = await asyncio.to_thread(gateway.parse_webhook, signature, payload)
    if event.transaction_id is None:
        return {"status": "ignored", "kind": event.kind}
    payment = await asyncio.to_thread(repository.find_payment_by_transaction, event.transaction_id)
    if payment is None or payment.payment_status != PaymentStatus.PENDING:
        return {"status": "ignored", "kind": event.kind}
    nudged = await workflows.nudge_payment(payment.payment_id)
    log.info("webhook received", kind=event.kind, payment_id=payment.payment_id, nudged=nudged)
    return {"status": "accepted", "kind": event.kind}
