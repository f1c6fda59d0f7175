"""Listings: newest first, filtered, paginated with an opaque cursor. A checkout key sees its
own merchant's payments and refunds; an admin key sees every merchant's (filter
``merchant_id``)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PaymentsDep, PrincipalDep, RefundsDep
from api.errors import ERRORS
from api.schemas import PageOut, PaymentPublic, RefundPublic
from payments.access import Principal
from payments.vocabulary import PaymentStatus, RefundStatus

router = APIRouter(tags=["listings"])

Limit = Annotated[int, Query(ge=1, le=100, description="Page size (1 to 100).")]
Filter = Annotated[str | None, Query(min_length=1, max_length=128)]


@router.get("/payments", response_model=PageOut[PaymentPublic], responses=ERRORS)
async def list_payments(
    payments: PaymentsDep,
    principal: PrincipalDep,
    merchant_id: Filter = None,
    status: PaymentStatus | None = None,
    user_id: Filter = None,
    order_id: Filter = None,
    limit: Limit = 20,
    cursor: Filter = None,
) -> PageOut[PaymentPublic]:
    if _foreign(principal, merchant_id):
        return PageOut(items=[], next_cursor=None)
    page = await asyncio.to_thread(
        lambda: payments.page(
            merchant_id=_merchant_scope(principal, merchant_id),
            status=status,
            user_id=user_id,
            order_id=order_id,
            limit=limit,
            cursor=cursor,
        )
    )
    return PageOut(items=[PaymentPublic.of(p) for p in page.items], next_cursor=page.next_cursor)


@router.get("/refunds", response_model=PageOut[RefundPublic], responses=ERRORS)
async def list_refunds(
    refunds: RefundsDep,
    principal: PrincipalDep,
    merchant_id: Filter = None,
    status: RefundStatus | None = None,
    user_id: Filter = None,
    order_id: Filter = None,
    payment_id: Filter = None,
    limit: Limit = 20,
    cursor: Filter = None,
) -> PageOut[RefundPublic]:
    if _foreign(principal, merchant_id):
        return PageOut(items=[], next_cursor=None)
    page = await asyncio.to_thread(
        lambda: refunds.page(
            merchant_id=_merchant_scope(principal, merchant_id),
            status=status,
            user_id=user_id,
            order_id=order_id,
            payment_id=payment_id,
            limit=limit,
            cursor=cursor,
        )
    )
    return PageOut(items=[RefundPublic.of(r) for r in page.items], next_cursor=page.next_cursor)


def _merchant_scope(principal: Principal, requested: str | None) -> str | None:
    """An admin lists one merchant or all; a checkout key always its own merchant's."""
    return requested if principal.is_admin else principal.merchant_id


def _foreign(principal: Principal, requested: str | None) -> bool:
    """A checkout key asking for another merchant's list: it gets an empty one, exactly as
    for a merchant that does not exist."""
    return not principal.is_admin and requested not in (None, principal.merchant_id)
