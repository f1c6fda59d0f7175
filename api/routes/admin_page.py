"""The operators' page: GET /admin/ shows the sign-in form, or, with a valid session cookie of
an admin key, the payment trends of the last two weeks, the payments held for fraud review
and the recent failed payments (api/admin_page.py renders them). POST /admin/session trades
an admin key (Authorization header) for that cookie; POST /admin/logout ends it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Cookie, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.admin_page import (
    CONTENT_SECURITY_POLICY,
    REVIEWS_SHOWN,
    dashboard_page,
    login_page,
)
from api.deps import AdminDep, ContainerDep, session_principal
from api.errors import ERRORS
from payments.analytics import Granularity, floor, summarize
from payments.vocabulary import PaymentStatus

router = APIRouter(prefix="/admin", tags=["admin"])

COOKIE = "payments_admin_session"
DAYS = 14
FAILED_SHOWN = 20


def _page(body: str) -> HTMLResponse:
    return HTMLResponse(body, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def admin_page(
    container: ContainerDep,
    session: Annotated[str | None, Cookie(alias=COOKIE, include_in_schema=False)] = None,
) -> HTMLResponse:
    principal = await session_principal(container, session) if session else None
    if principal is None or not principal.is_admin:
        return _page(login_page())
    now = datetime.now(UTC)
    end = floor(now, Granularity.DAY) + timedelta(days=1)
    start = end - timedelta(days=DAYS)
    db = container.db
    rows = await asyncio.to_thread(db.analytics.payments_between, start, end, None)
    failed = await asyncio.to_thread(
        lambda: db.payments.page(status=PaymentStatus.FAILURE, limit=FAILED_SHOWN).items
    )
    held = await asyncio.to_thread(db.fraud.awaiting_review, limit=REVIEWS_SHOWN)
    temporal = container.settings.temporal
    return _page(
        dashboard_page(
            summarize(rows, start, end, Granularity.DAY),
            failed,
            held=held,
            ui_url=temporal.ui_url or f"http://127.0.0.1:{temporal.ui_port}",
            namespace=temporal.namespace,
            now=now,
        )
    )


@router.post("/session", status_code=204, responses=ERRORS)
async def start_session(request: Request, admin: AdminDep, container: ContainerDep) -> Response:
    """Trade an admin key for an HttpOnly session cookie of this page (8 hours, ends when
    the key is revoked)."""
    return container.sessions.started(
        admin.key_id, cookie=COOKIE, path="/admin", https=request.url.scheme == "https"
    )


@router.post("/logout", include_in_schema=False)
async def logout() -> Response:
    response = RedirectResponse("./", status_code=303)
    response.delete_cookie(COOKIE, path="/admin")
    return response
