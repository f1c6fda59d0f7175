"""Saved payment methods (tokenization): the gateway vaults the card or account; the service
keeps only the gateway's token, encrypted, and what may be shown (brand, last 4, expiry).

Every saved method belongs to a merchant and one of its users; another merchant's method is
"not found", and cannot be charged (initiation refuses it like an unknown one)."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Response, status

from api.deps import ContainerDep, PaymentMethodsDep, PrincipalDep, WorkflowsDep
from api.errors import ERRORS
from api.schemas import SavedPaymentMethod, SavedPaymentMethods, SavePaymentMethodIn
from payments.access import Principal
from payments.contracts import VaultRequest
from payments.db.models import StoredPaymentMethod
from payments.db.repositories.payment_methods import PaymentMethodRepository
from payments.errors import InvalidRequest, NotFound, ServiceUnavailable
from payments.requests import Identifier
from payments.vocabulary import VaultStatus

router = APIRouter(tags=["payment methods"])


@router.post(
    "/payment-methods",
    status_code=status.HTTP_201_CREATED,
    response_model=SavedPaymentMethod,
    responses={**ERRORS, 202: {"model": SavedPaymentMethod}},
    summary="Save a payment method for later payments",
)
async def save_payment_method(
    body: SavePaymentMethodIn,
    response: Response,
    workflows: WorkflowsDep,
    payment_methods: PaymentMethodsDep,
    principal: PrincipalDep,
    container: ContainerDep,
) -> SavedPaymentMethod:
    """Vaults the nonce's card, wallet or bank account with the gateway (through a short
    workflow, so the gateway call has Temporal's retries). Answers within a few seconds:
    201 (saved), 422 (the gateway refused the nonce), or 202 with ``status: pending`` when
    the gateway is slow — follow ``Location`` until it is ``active`` or ``failed``. Pay with
    it by sending ``payment_method_id`` instead of ``payment_token`` to POST
    /initiate-payment."""
    merchant_id = principal.merchant_id or container.settings.auth.default_merchant_id
    payment_method_id = str(uuid.uuid4())
    await asyncio.to_thread(
        lambda: payment_methods.add_pending(
            payment_method_id, merchant_id=merchant_id, user_id=body.user_id
        )
    )
    response.headers["Location"] = f"/payment-methods/{payment_method_id}"
    try:
        finished = await workflows.vault(
            VaultRequest(
                payment_method_id=payment_method_id,
                user_id=body.user_id,
                payment_token=body.payment_token,
                merchant_id=merchant_id,
            ),
            wait_seconds=container.settings.api.vault_wait_seconds,
        )
    except Exception:
        # Never started: nothing will finish the pending row.
        await asyncio.to_thread(
            lambda: payment_methods.fail(
                payment_method_id, code="not_started", message="the vault could not be started"
            )
        )
        raise
    stored = await asyncio.to_thread(payment_methods.get, payment_method_id)
    assert stored is not None  # inserted above
    if stored.status == VaultStatus.FAILED:
        raise InvalidRequest(
            f"the gateway refused the payment method ({stored.failure_code}: "
            f"{stored.failure_message})",
            field="payment_token",
        )
    if stored.status == VaultStatus.PENDING:
        if finished:  # the workflow ended without recording an outcome: a fault, say so
            raise ServiceUnavailable("the payment method could not be saved now")
        response.status_code = status.HTTP_202_ACCEPTED
    return SavedPaymentMethod.of(stored)


async def _load(
    payment_methods: PaymentMethodRepository, principal: Principal, payment_method_id: str
) -> StoredPaymentMethod:
    stored = await asyncio.to_thread(payment_methods.get, payment_method_id)
    if stored is None or not principal.can_see(stored.merchant_id):
        raise NotFound(f"payment method {payment_method_id} not found", field="payment_method_id")
    return stored


@router.get(
    "/payment-methods/{payment_method_id}", response_model=SavedPaymentMethod, responses=ERRORS
)
async def get_payment_method(
    payment_method_id: str, payment_methods: PaymentMethodsDep, principal: PrincipalDep
) -> SavedPaymentMethod:
    """A saved method, including one still being vaulted (``pending``) or refused
    (``failed``, with the gateway's reason)."""
    return SavedPaymentMethod.of(await _load(payment_methods, principal, payment_method_id))


@router.get(
    "/users/{user_id}/payment-methods", response_model=SavedPaymentMethods, responses=ERRORS
)
async def list_payment_methods(
    user_id: Identifier,
    payment_methods: PaymentMethodsDep,
    principal: PrincipalDep,
    container: ContainerDep,
) -> SavedPaymentMethods:
    """The user's active saved methods at the key's merchant (an admin key without a
    merchant: the default merchant's)."""
    merchant_id = principal.merchant_id or container.settings.auth.default_merchant_id
    methods = await asyncio.to_thread(
        lambda: payment_methods.active_of_user(user_id, merchant_id=merchant_id)
    )
    return SavedPaymentMethods(items=[SavedPaymentMethod.of(m) for m in methods])


@router.delete(
    "/payment-methods/{payment_method_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERRORS,
)
async def delete_payment_method(
    payment_method_id: str,
    payment_methods: PaymentMethodsDep,
    workflows: WorkflowsDep,
    principal: PrincipalDep,
) -> Response:
    """Unusable at once; removed from the gateway's vault by a workflow shortly after."""
    await _load(payment_methods, principal, payment_method_id)
    await asyncio.to_thread(payment_methods.delete, payment_method_id)
    await workflows.remove_payment_method(payment_method_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
