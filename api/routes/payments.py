"""Payment endpoints: where a payment's journey starts (POST /initiate-payment)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Response, status

from api.deps import GatewayDep, IdempotencyKeyHeader, RepositoryDep, ServiceDep, WorkflowsDep
from api.schemas import (
    AuditEventOut,
    AuditTrail,
    ErrorOut,
    GatewayView,
    InitiatePaymentIn,
    PaymentPublic,
    VerifiedPayment,
    VerifyPaymentIn,
)
from payments.db.models import Payment, PaymentStatus
from payments.errors import Conflict, NotFound
from payments.gateway.types import APPROVED_STATUSES, GatewayTransaction
from payments.service import InitiatePayment

router = APIRouter(tags=["payments"])

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 404, 409, 422, 503)
}


@router.post(
    "/initiate-payment",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PaymentPublic,
    responses=ERRORS,
    summary="Start a payment",
)
async def initiate_payment(
    body: InitiatePaymentIn,
    response: Response,
    service: ServiceDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> PaymentPublic:
    """Accepts the payment and starts its workflow; the answer is ``pending``. Follow the
    ``Location`` header (or the ``payment_status`` topic) for the outcome."""
    payment, created = await service.initiate_payment(
        InitiatePayment(
            order_id=body.order_id,
            user_id=body.user_id,
            amount=body.amount,
            currency=body.currency,
            payment_method=body.payment_method,
            payment_token=body.payment_token,
            payment_method_id=body.payment_method_id,
            retry=body.retry,
            idempotency_key=idempotency_key,
        )
    )
    response.headers["Location"] = f"/payment/{payment.payment_id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return PaymentPublic.of(payment)


async def _load(repository: RepositoryDep, payment_id: str) -> Payment:
    payment = await asyncio.to_thread(repository.get_payment, payment_id)
    if payment is None:
        raise NotFound(f"payment {payment_id} not found", field="payment_id")
    return payment


@router.get("/payment/{payment_id}", response_model=PaymentPublic, responses=ERRORS)
async def get_payment(payment_id: str, repository: RepositoryDep) -> PaymentPublic:
    return PaymentPublic.of(await _load(repository, payment_id))


@router.post("/verify-payment", response_model=VerifiedPayment, responses=ERRORS)
async def verify_payment(
    body: VerifyPaymentIn, repository: RepositoryDep, gateway: GatewayDep, workflows: WorkflowsDep
) -> VerifiedPayment:
    """The stored payment next to what the gateway says about its transaction right now.
    A pending payment's workflow is asked to check the gateway at once (it is the only writer
    of the payment's status); poll GET /payment/{id} for the result."""
    payment = await _load(repository, body.payment_id)
    if payment.payment_status == PaymentStatus.PENDING:
        await workflows.nudge_payment(payment.payment_id)
    view: GatewayView | None = None
    transaction: GatewayTransaction | None = None
    if payment.transaction_id is not None:
        transaction = await asyncio.to_thread(gateway.find, payment.transaction_id)
        view = GatewayView(
            transaction_id=transaction.transaction_id,
            status=transaction.status,
            amount=str(transaction.amount),
            currency=transaction.amount.currency,
            processor_response_code=transaction.processor_response_code,
            checked_at=datetime.now(UTC),
        )
    return VerifiedPayment(
        **PaymentPublic.of(payment).model_dump(),
        gateway=view,
        consistent=_consistent(payment, transaction),
    )


def _consistent(payment: Payment, transaction: GatewayTransaction | None) -> bool:
    if transaction is None:
        return payment.payment_status != PaymentStatus.SUCCESS
    approved = transaction.status in APPROVED_STATUSES or (
        transaction.status == "voided" and payment.refunded_amount == payment.amount
    )
    if payment.payment_status == PaymentStatus.SUCCESS:
        return approved
    if payment.payment_status == PaymentStatus.FAILURE:
        return not approved
    return False  # pending although the gateway has answered: the workflow is catching up


@router.post("/payment/{payment_id}/cancel", response_model=PaymentPublic, responses=ERRORS)
async def cancel_payment(
    payment_id: str, repository: RepositoryDep, workflows: WorkflowsDep
) -> PaymentPublic:
    """Stop a payment that waits to retry a soft decline: it ends as ``failure``
    (``cancelled``). Anything else (charging, settled, failed) is a 409."""
    payment = await _load(repository, payment_id)
    if payment.payment_status != PaymentStatus.PENDING:
        raise Conflict(f"payment {payment_id} is {payment.payment_status}", field="payment_id")
    await workflows.cancel_payment(payment_id)
    for _ in range(50):  # the workflow records the cancellation a moment later
        payment = await _load(repository, payment_id)
        if payment.payment_status != PaymentStatus.PENDING:
            break
        await asyncio.sleep(0.1)
    return PaymentPublic.of(payment)


@router.get("/payment/{payment_id}/events", response_model=AuditTrail, responses=ERRORS)
async def payment_events(payment_id: str, repository: RepositoryDep) -> AuditTrail:
    """Every status change of the payment and its refunds, oldest first, including changes
    that were refused."""
    await _load(repository, payment_id)
    events = await asyncio.to_thread(repository.audit_trail, payment_id)
    return AuditTrail(items=[AuditEventOut.of(e) for e in events])
