"""Every request's id, in every log line written while it is served and in its answer.

The caller's ``X-Request-ID`` is kept when it is a plain token (a load balancer's or the
checkout's own, so that one id follows a payment across systems); anything else is replaced by
a new id. The authenticated key's merchant is bound too (``api.deps.authenticate``).
"""

from __future__ import annotations

import re
import uuid

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payments.card_data import contains_card_number

REQUEST_ID_HEADER = "X-Request-ID"
# Letters, digits and . _ : - (UUIDs, trace ids, load balancers' ids), at most 128.
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_of(given: str | None) -> str:
    """The caller's id when it is a plain token that holds no card number (it goes into every
    log line and back to the caller), else a new one."""
    if given is not None and _PLAIN_TOKEN.fullmatch(given) and not contains_card_number(given):
        return given
    return uuid.uuid4().hex


class RequestContext:
    """Pure ASGI (no task of its own): what it binds reaches the routes, their dependencies,
    the error handlers and uvicorn's access line, which all run in the request's task."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(Headers(scope=scope).get(REQUEST_ID_HEADER))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        before = set(structlog.contextvars.get_contextvars())
        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                await self.app(scope, receive, send_with_id)
        finally:
            # What the request bound on its way (its merchant) ends with it, even where the
            # server runs the next request in the same context.
            after = set(structlog.contextvars.get_contextvars())
            structlog.contextvars.unbind_contextvars(*(after - before))
