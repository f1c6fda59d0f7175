"""Admin listings: newest first, filtered, paginated with an opaque cursor."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import RepositoryDep
from api.routes.payments import ERRORS
from api.schemas import PageOut, PaymentPublic, RefundPublic
from payments.db.models import PaymentStatus, RefundStatus

router = APIRouter(tags=["admin"])

Limit = Annotated[int, Query(ge=1, le=100, description="Page size (1 to 100).")]
Filter = Annotated[str | None, Query(min_length=1, max_length=128)]


@router.get("/payments", response_model=PageOut[PaymentPublic], responses=ERRORS)
async def list_payments(
    repository: RepositoryDep,
    status: PaymentStatus | None = None,
    user_id: Filter = None,
    order_id: Filter = None,
    limit: Limit = 20,
    cursor: Filter = None,
) -> PageOut[PaymentPublic]:
    page = await asyncio.to_thread(
        lambda: repository.list_payments(
            status=status, user_id=user_id, order_id=order_id, limit=limit, cursor=cursor
        )
    )
    return PageOut(items=[PaymentPublic.of(p) for p in page.items], next_cursor=page.next_cursor)


@router.get("/refunds", response_model=PageOut[RefundPublic], responses=ERRORS)
async def list_refunds(
    repository: RepositoryDep,
    status: RefundStatus | None = None,
    user_id: Filter = None,
    order_id: Filter = None,
    payment_id: Filter = None,
    limit: Limit = 20,
    cursor: Filter = None,
) -> PageOut[RefundPublic]:
    page = await asyncio.to_thread(
        lambda: repository.list_refunds(
            status=status,
            user_id=user_id,
            order_id=order_id,
            payment_id=payment_id,
            limit=limit,
            cursor=cursor,
        )
    )
    return PageOut(items=[RefundPublic.of(r) for r in page.items], next_cursor=page.next_cursor)
