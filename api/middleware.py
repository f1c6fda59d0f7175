"""The API's edge, as ASGI middleware that runs before any route (and before FastAPI reads
the body):

- ``SecurityHeaders``: ``Cache-Control: no-store`` (answers hold payment data: no cache may
  keep them) and ``X-Content-Type-Options: nosniff`` on every answer;
- ``RequestHygiene``: bodies over the cap are refused with 413 while they are read (a client
  cannot make the process buffer more); a card number anywhere in the path, the query, the
  ``Idempotency-Key``/``X-Namespace`` headers or the body is refused with 422
  ``card_number_not_allowed`` — before anything is stored, logged (the access log line is
  written after the answer, with the number masked), published or started; control
  characters in the path, query or those headers are a 422 ``invalid_characters``;
- ``codec_cors``: CORS for the codec endpoint only, for the Temporal Web UI's origins.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote_plus

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import domain_error_response
from payments.card_data import contains_card_number, first_card_number_path
from payments.errors import (
    CardNumberNotAllowed,
    InvalidCharacters,
    PayloadTooLarge,
    PaymentServiceError,
)

_CHECKED_HEADERS = (b"idempotency-key", b"x-namespace")
_CARD_MESSAGE = (
    "looks like a card number: card data is never accepted; tokenize the card with the "
    "gateway's client SDK and send its nonce"
)


def has_control_characters(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in (b"cache-control", b"x-content-type-options")
                ]
                headers += [
                    (b"cache-control", b"no-store"),
                    (b"x-content-type-options", b"nosniff"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, send_with_headers)


class RequestHygiene:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self._app = app
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        try:
            self._check_request_line(scope)
            body = await self._read_body(scope, receive)
            self._check_body(scope, body)
        except PaymentServiceError as refused:
            await domain_error_response(refused)(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            # The route reads the body we already read; afterwards, wait for the disconnect.
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self._app(scope, replay, send)

    def _check_request_line(self, scope: Scope) -> None:
        path = str(scope.get("path", ""))
        query = unquote_plus(bytes(scope.get("query_string", b"")).decode("latin-1"))
        texts = [("path", path), ("query", query)]
        for name, value in scope.get("headers", []):
            if name.lower() in _CHECKED_HEADERS:
                texts.append((name.decode("latin-1").title(), value.decode("latin-1")))
        for where, text in texts:
            if contains_card_number(text):
                raise CardNumberNotAllowed(f"{where} {_CARD_MESSAGE}", field=where)
            if has_control_characters(text):
                raise InvalidCharacters(f"{where}: control characters are not allowed", field=where)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        too_large = PayloadTooLarge(
            f"the request body exceeds {self._max_body_bytes} bytes", field="body"
        )
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length":
                try:
                    if int(value) > self._max_body_bytes:
                        raise too_large
                except ValueError:
                    pass  # the server refuses a malformed length itself
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body_bytes:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _check_body(self, scope: Scope, body: bytes) -> None:
        if not body:
            return
        text = body.decode("utf-8", "replace")
        field: str | None = None
        found = False
        try:
            # JSON may spell digits as \\u escapes: look at the decoded values (and keys).
            decoded: Any = json.loads(text)
        except ValueError:
            # A form (the gateway's webhooks) or not JSON at all (the route answers 400).
            found = contains_card_number(text) or contains_card_number(unquote_plus(text))
        else:
            field = first_card_number_path(decoded)
            found = field is not None
            if field == "$":  # the body itself is the number
                field = "body"
        if found:
            raise CardNumberNotAllowed(f"{field or 'body'} {_CARD_MESSAGE}", field=field or "body")


def codec_cors(app: ASGIApp, *, origins: Sequence[str], prefix: str = "/codec") -> ASGIApp:
    """CORS (with credentials: the UI sends its session cookie) on ``prefix`` only."""
    cors = CORSMiddleware(
        app,
        allow_origins=list(origins),
        allow_methods=["POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
        allow_credentials=True,
        max_age=600,
    )

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(prefix):
            await cors(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch
