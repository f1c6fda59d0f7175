"""Payment endpoints: where a payment's journey starts (POST /initiate-payment)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Response, status

from api.deps import (
    AuditDep,
    ContainerDep,
    GatewayDep,
    IdempotencyKeyHeader,
    PaymentsDep,
    PrincipalDep,
    ServiceDep,
    WorkflowsDep,
)
from api.errors import ERRORS
from api.prefer import PreferWait, apply_wait
from api.schemas import (
    AuditEventOut,
    AuditTrail,
    GatewayView,
    InitiatePaymentIn,
    PaymentPublic,
    VerifiedPayment,
    VerifyPaymentIn,
)
from payments.access import Principal
from payments.db.models import Payment
from payments.errors import Conflict, NotFound
from payments.gateway.types import GatewayTransaction
from payments.service import InitiatePayment
from payments.vocabulary import APPROVED_STATUSES, PaymentStatus

router = APIRouter(tags=["payments"])


@router.post(
    "/initiate-payment",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PaymentPublic,
    responses={
        **ERRORS,
        200: {"model": PaymentPublic, "description": "Final within the `Prefer: wait=N` asked for"},
    },
    summary="Start a payment",
)
async def initiate_payment(
    body: InitiatePaymentIn,
    response: Response,
    service: ServiceDep,
    principal: PrincipalDep,
    container: ContainerDep,
    wait: PreferWait,
    idempotency_key: IdempotencyKeyHeader = None,
) -> PaymentPublic:
    """Accepts the payment and starts its workflow; the answer is ``pending``. Follow the
    ``Location`` header (or the ``payment_status`` topic) for the outcome, or ask for it
    with ``Prefer: wait=N`` (see api/prefer.py). The payment
    belongs to the key's merchant (an admin key without one: the default merchant)."""
    payment, created = await service.initiate_payment(
        InitiatePayment(
            merchant_id=principal.merchant_id or container.settings.auth.default_merchant_id,
            order_id=body.order_id,
            user_id=body.user_id,
            amount=body.amount,
            currency=body.currency,
            payment_method=body.payment_method,
            payment_token=body.payment_token,
            payment_method_id=body.payment_method_id,
            retry=body.retry,
            idempotency_key=idempotency_key,
            wait_seconds=wait,
        )
    )
    apply_wait(response, wait, final=payment.payment_status != PaymentStatus.PENDING)
    response.headers["Location"] = f"/payment/{payment.payment_id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return PaymentPublic.of(payment)


async def load_payment(payments: PaymentsDep, principal: Principal, payment_id: str) -> Payment:
    """The payment, if this key may see it; another merchant's payment is "not found", exactly
    like an unknown id."""
    payment = await asyncio.to_thread(payments.get, payment_id)
    if payment is None or not principal.can_see(payment.merchant_id):
        raise NotFound(f"payment {payment_id} not found", field="payment_id")
    return payment


@router.get("/payment/{payment_id}", response_model=PaymentPublic, responses=ERRORS)
async def get_payment(
    payment_id: str, payments: PaymentsDep, principal: PrincipalDep
) -> PaymentPublic:
    return PaymentPublic.of(await load_payment(payments, principal, payment_id))


@router.post("/verify-payment", response_model=VerifiedPayment, responses=ERRORS)
async def verify_payment(
    body: VerifyPaymentIn,
    payments: PaymentsDep,
    gateway: GatewayDep,
    workflows: WorkflowsDep,
    principal: PrincipalDep,
) -> VerifiedPayment:
    """The stored payment next to what the gateway says about its transaction right now.
    A pending payment's workflow is asked to check the gateway at once (it is the only writer
    of the payment's status); poll GET /payment/{id} for the result."""
    payment = await load_payment(payments, principal, body.payment_id)
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
    payment_id: str, payments: PaymentsDep, workflows: WorkflowsDep, principal: PrincipalDep
) -> PaymentPublic:
    """Stop a payment that waits to retry a soft decline: it ends as ``failure``
    (``cancelled``). Anything else (charging, settled, failed) is a 409."""
    payment = await load_payment(payments, principal, payment_id)
    if payment.payment_status != PaymentStatus.PENDING:
        raise Conflict(f"payment {payment_id} is {payment.payment_status}", field="payment_id")
    # The workflow's update answers once the failure is recorded.
    await workflows.cancel_payment(payment_id)
    return PaymentPublic.of(await load_payment(payments, principal, payment_id))


@router.get("/payment/{payment_id}/events", response_model=AuditTrail, responses=ERRORS)
async def payment_events(
    payment_id: str, payments: PaymentsDep, audit: AuditDep, principal: PrincipalDep
) -> AuditTrail:
    """Every status change of the payment and its refunds, oldest first, including changes
    that were refused."""
    await load_payment(payments, principal, payment_id)
    events = await asyncio.to_thread(audit.trail, payment_id)
    return AuditTrail(items=[AuditEventOut.of(e) for e in events])
