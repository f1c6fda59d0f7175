"""Fraud operations (admin): the blocklist the rules decline, and the review queue.

A payment the rules send to review is authorized at the gateway and held; its workflow waits
for ``POST /admin/payments/{id}/review`` (a Temporal update, checked by the workflow itself)
until the review deadline, then voids it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse

from api.deps import AdminDep, FraudDep, PaymentsDep, WorkflowsDep
from api.errors import ERRORS
from api.schemas import (
    Blocklist,
    BlocklistEntryOut,
    BlocklistIn,
    HeldPaymentOut,
    PaymentPublic,
    ReviewIn,
    Reviews,
)
from payments.contracts import ReviewDecision
from payments.errors import NotFound

router = APIRouter(prefix="/admin", tags=["fraud"])


# How long POST /admin/payments/{id}/review waits for the capture or void to be recorded
# before answering 202 (the decision is accepted either way).
REVIEW_ANSWER_WAIT_SECONDS = 10.0


@router.post(
    "/blocklist",
    status_code=status.HTTP_201_CREATED,
    response_model=BlocklistEntryOut,
    responses=ERRORS,
    summary="Blocklist a user, a payment-method fingerprint or a card BIN",
)
async def block(body: BlocklistIn, fraud: FraudDep, admin: AdminDep) -> BlocklistEntryOut:
    """Payments checked from now on by a listed user, fingerprint or BIN are declined
    (``fraud_declined``). 409 when the value is listed already."""
    entry = await asyncio.to_thread(
        lambda: fraud.block(body.kind, body.value, body.reason, created_by=admin.key_id)
    )
    return BlocklistEntryOut.of(entry)


@router.get("/blocklist", response_model=Blocklist, responses=ERRORS)
async def blocklist(fraud: FraudDep, _admin: AdminDep) -> Blocklist:
    entries = await asyncio.to_thread(fraud.blocklist)
    return Blocklist(items=[BlocklistEntryOut.of(entry) for entry in entries])


@router.delete("/blocklist/{entry_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def unblock(entry_id: str, fraud: FraudDep, _admin: AdminDep) -> Response:
    await asyncio.to_thread(fraud.unblock, entry_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/reviews", response_model=Reviews, responses=ERRORS)
async def reviews(
    fraud: FraudDep,
    _admin: AdminDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Reviews:
    """Payments held for review (authorized, not charged), the nearest deadline first."""
    held = await asyncio.to_thread(lambda: fraud.awaiting_review(limit=limit))
    return Reviews(items=[HeldPaymentOut.of(payment) for payment in held])


@router.post(
    "/payments/{payment_id}/review",
    response_model=PaymentPublic,
    responses={**ERRORS, 202: {"model": PaymentPublic, "description": "accepted, not yet done"}},
    summary="Approve (capture) or decline (void) a payment held for review",
)
async def review(
    payment_id: str,
    body: ReviewIn,
    payments: PaymentsDep,
    workflows: WorkflowsDep,
    admin: AdminDep,
) -> PaymentPublic | JSONResponse:
    """200 with the payment once captured (``success``) or voided (``failure``,
    ``fraud_declined``); 202 with it still pending when the gateway takes longer (the
    decision stands). 409 when the payment is not held for review or was reviewed already."""
    if await asyncio.to_thread(payments.get, payment_id) is None:
        raise NotFound(f"payment {payment_id} not found", field="payment_id")
    done = await workflows.review_payment(
        payment_id,
        ReviewDecision(decision=body.decision, note=body.note, reviewed_by=admin.key_id),
        wait_seconds=REVIEW_ANSWER_WAIT_SECONDS,
    )
    payment = await asyncio.to_thread(payments.get, payment_id)
    assert payment is not None
    answer = PaymentPublic.of(payment)
    if done is None:
        return JSONResponse(answer.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)
    return answer
