"""Saved payment methods (tokenization): the gateway vaults the card or account; the service
keeps only the gateway's token, encrypted, and what may be shown (brand, last 4, expiry)."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Response, status

from api.deps import RepositoryDep, WorkflowsDep
from api.routes.payments import ERRORS
from api.schemas import SavedPaymentMethod, SavedPaymentMethods, SavePaymentMethodIn
from payments.contracts import VaultRequest
from payments.errors import InvalidRequest, NotFound

router = APIRouter(tags=["payment methods"])


@router.post(
    "/payment-methods",
    status_code=status.HTTP_201_CREATED,
    response_model=SavedPaymentMethod,
    responses=ERRORS,
    summary="Save a payment method for later payments",
)
async def save_payment_method(
    body: SavePaymentMethodIn,
    response: Response,
    workflows: WorkflowsDep,
    repository: RepositoryDep,
) -> SavedPaymentMethod:
    """Vaults the nonce's card, wallet or bank account with the gateway (through a short
    workflow, so the gateway call has Temporal's retries). Pay with it by sending
    ``payment_method_id`` instead of ``payment_token`` to POST /initiate-payment."""
    payment_method_id = str(uuid.uuid4())
    result = await workflows.vault(
        VaultRequest(
            payment_method_id=payment_method_id,
            user_id=body.user_id,
            payment_token=body.payment_token,
        )
    )
    if not result.succeeded:
        raise InvalidRequest(
            f"the gateway refused the payment method ({result.error_code}: {result.error_message})",
            field="payment_token",
        )
    stored = await asyncio.to_thread(repository.get_payment_method, payment_method_id)
    assert stored is not None  # written by the vault activity before it returned
    response.headers["Location"] = f"/payment-methods/{payment_method_id}"
    return SavedPaymentMethod.of(stored)


@router.get(
    "/users/{user_id}/payment-methods", response_model=SavedPaymentMethods, responses=ERRORS
)
async def list_payment_methods(user_id: str, repository: RepositoryDep) -> SavedPaymentMethods:
    methods = await asyncio.to_thread(repository.list_payment_methods, user_id)
    return SavedPaymentMethods(items=[SavedPaymentMethod.of(m) for m in methods])


@router.delete(
    "/payment-methods/{payment_method_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERRORS,
)
async def delete_payment_method(
    payment_method_id: str, repository: RepositoryDep, workflows: WorkflowsDep
) -> Response:
    """Unusable at once; removed from the gateway's vault by a workflow shortly after."""
    stored = await asyncio.to_thread(repository.delete_payment_method, payment_method_id)
    if stored is None:
        raise NotFound(f"payment method {payment_method_id} not found", field="payment_method_id")
    await workflows.remove_payment_method(payment_method_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
