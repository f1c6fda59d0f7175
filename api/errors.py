"""Every error leaves the API as ``{"error": {type, message, field, errors}}``.

Client mistakes are 4xx naming the field (never echoing what was sent: it may be a card number
or a key); a missing or bad key is a 401 with ``WWW-Authenticate: Bearer``, a key without the
role a 403, too many requests a 429 with Retry-After; an unreachable dependency is a 503 with
Retry-After; anything unexpected is a bare 500 that reveals nothing (and is logged).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

from api.schemas import ErrorBody, ErrorDetail, ErrorOut
from payments.errors import (
    CardNumberNotAllowed,
    InvalidCharacters,
    PaymentServiceError,
    RateLimited,
)

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = "5"

# The error answers every route may give, for the OpenAPI schema (``responses=ERRORS``).
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}


def error_response(
    status_code: int,
    type_: str,
    message: str,
    *,
    field: str | None = None,
    errors: Sequence[ErrorDetail] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorOut(error=ErrorBody(type=type_, message=message, field=field, errors=list(errors)))
    return JSONResponse(body.model_dump(), status_code=status_code, headers=headers)


def _field_of(location: Sequence[Any]) -> str | None:
    parts = [str(p) for p in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        source, parts = parts[0], parts[1:]
        if source == "header" and parts:
            return "-".join(word.capitalize() for word in parts[0].split("-"))
    # Drop pydantic's type tags (e.g. "function-before[...]") from the location.
    parts = [p for p in parts if "[" not in p]
    return ".".join(parts) or None


# Validation error types (pydantic's, or raised by our validators) that have a type of their
# own in the answer, so a client can tell "fix this field" from "never send card data".
_VALIDATION_TYPES = {
    CardNumberNotAllowed.code: CardNumberNotAllowed.code,
    InvalidCharacters.code: InvalidCharacters.code,
}


def domain_error_response(exc: PaymentServiceError) -> JSONResponse:
    """The answer for one of the service's own errors (also used by the ASGI middleware,
    which runs outside FastAPI's exception handlers)."""
    code = exc.http_status
    headers: dict[str, str] = {}
    if code == status.HTTP_401_UNAUTHORIZED:
        headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(exc, RateLimited):  # the only error that knows how long to wait
        headers["Retry-After"] = str(exc.retry_after_seconds)
    elif code == status.HTTP_503_SERVICE_UNAVAILABLE:
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    if code >= 500:
        log.warning("request failed", error=exc.code, message=exc.message)
    return error_response(code, exc.code, exc.message, field=exc.field, headers=headers or None)


def _unavailable(dependency: str) -> JSONResponse:
    """503 for a dependency that is down: the same request may succeed once it is back."""
    return error_response(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "service_unavailable",
        f"{dependency} is unavailable; retry later",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            ErrorDetail(field=_field_of(e.get("loc", ())), message=str(e.get("msg", "invalid")))
            for e in exc.errors()
        ]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return error_response(
                status.HTTP_400_BAD_REQUEST,
                "malformed_json",
                "the request body is not valid JSON",
                field="body",
            )
        special = [
            (str(e.get("type")), details[i])
            for i, e in enumerate(exc.errors())
            if str(e.get("type")) in _VALIDATION_TYPES
        ]
        # A card number outranks any other problem of the request: it is what the client
        # must stop doing.
        special.sort(key=lambda item: item[0] != CardNumberNotAllowed.code)
        if special:
            type_, first = _VALIDATION_TYPES[special[0][0]], special[0][1]
        else:
            type_ = "validation_error"
            first = details[0] if details else ErrorDetail(field=None, message="invalid request")
        message = f"{first.field}: {first.message}" if first.field else first.message
        return error_response(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            type_,
            message,
            field=first.field,
            errors=details,
        )

    @app.exception_handler(PaymentServiceError)
    async def _domain(_request: Request, exc: PaymentServiceError) -> JSONResponse:
        return domain_error_response(exc)

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable", error=type(exc).__name__)
        return _unavailable("the database")

    @app.exception_handler(RPCError)
    async def _temporal_down(_request: Request, exc: RPCError) -> JSONResponse:
        log.warning("temporal unavailable", status=str(exc.status), error=exc.message)
        return _unavailable("the workflow service")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(
            exc.status_code,
            "not_found" if exc.status_code == 404 else "http_error",
            str(exc.detail),
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", error=type(exc).__name__)
        return error_response(
            status.HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal error"
        )
