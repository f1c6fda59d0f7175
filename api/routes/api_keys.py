"""API keys (admin): create (the secret is shown once), list (never the secrets), revoke.

The first key naming a merchant id creates that merchant. The first admin key of a fresh
deployment comes from the console: ``python -m api.keys create --role admin``.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response, status

from api.deps import AccessDep, AdminDep
from api.errors import ERRORS
from api.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut, ApiKeys
from payments.db.models import Role
from payments.errors import InvalidRequest, NotFound

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=ERRORS,
    summary="Create an API key (the secret is shown once)",
)
async def create_key(body: ApiKeyIn, access: AccessDep, admin: AdminDep) -> ApiKeyCreated:
    """A checkout key needs a merchant id (created with its first key); an admin key may
    name one (payments it starts then belong to it) or none."""
    if body.role == Role.CHECKOUT and body.merchant_id is None:
        raise InvalidRequest("a checkout key belongs to a merchant", field="merchant_id")
    key, secret = await asyncio.to_thread(
        lambda: access.create_key(
            role=body.role, merchant_id=body.merchant_id, created_by=admin.key_id
        )
    )
    return ApiKeyCreated(**ApiKeyOut.of(key).model_dump(), secret=secret.secret)


@router.get("/api-keys", response_model=ApiKeys, responses=ERRORS)
async def list_keys(access: AccessDep, _admin: AdminDep, merchant_id: str | None = None) -> ApiKeys:
    keys = await asyncio.to_thread(access.list_keys, merchant_id)
    return ApiKeys(items=[ApiKeyOut.of(k) for k in keys])


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def revoke_key(key_id: str, access: AccessDep, _admin: AdminDep) -> Response:
    """Revoked at once: the next request with it is a 401. Idempotent."""
    revoked = await asyncio.to_thread(access.revoke, key_id)
    if revoked is None:
        raise NotFound(f"API key {key_id} not found", field="key_id")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
