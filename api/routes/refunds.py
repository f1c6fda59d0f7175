"""Refund endpoints: POST /refund reserves the amount and starts a RefundWorkflow."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response, status

from api.deps import IdempotencyKeyHeader, PrincipalDep, RefundsDep, ServiceDep
from api.errors import ERRORS
from api.prefer import PreferWait, apply_wait
from api.schemas import RefundIn, RefundPublic
from payments.errors import NotFound
from payments.service import RequestRefund
from payments.vocabulary import RefundStatus

router = APIRouter(tags=["refunds"])


@router.post(
    "/refund",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RefundPublic,
    responses={
        **ERRORS,
        200: {"model": RefundPublic, "description": "Final within the `Prefer: wait=N` asked for"},
    },
    summary="Refund all or part of a successful payment",
)
async def refund(
    body: RefundIn,
    response: Response,
    service: ServiceDep,
    principal: PrincipalDep,
    wait: PreferWait,
    idempotency_key: IdempotencyKeyHeader = None,
) -> RefundPublic:
    """Without ``amount``, refunds everything not yet refunded. Refused (409/422) when the
    payment is not ``success`` or the amount exceeds what is left, counting refunds still in
    flight. Before settlement a full refund voids the sale; a partial one waits for
    settlement, then refunds."""
    stored, created = await service.request_refund(
        RequestRefund(
            merchant_id=principal.merchant_filter(),
            payment_id=body.payment_id,
            amount=body.amount,
            reason=body.reason,
            idempotency_key=idempotency_key,
            wait_seconds=wait,
        )
    )
    apply_wait(response, wait, final=stored.refund_status != RefundStatus.INITIATED)
    response.headers["Location"] = f"/refund/{stored.refund_id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return RefundPublic.of(stored)


@router.get("/refund/{refund_id}", response_model=RefundPublic, responses=ERRORS)
async def get_refund(refund_id: str, refunds: RefundsDep, principal: PrincipalDep) -> RefundPublic:
    stored = await asyncio.to_thread(refunds.get, refund_id)
    if stored is None or not principal.can_see(stored.merchant_id):
        raise NotFound(f"refund {refund_id} not found", field="refund_id")
    return RefundPublic.of(stored)
