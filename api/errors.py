"""Every error leaves the API as ``{"error": {type, message, field, errors}}``.

Client mistakes are 4xx naming the field; an unreachable dependency is a 503 with
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
    Conflict,
    GatewayError,
    GatewayNotFound,
    IdempotencyKeyReused,
    InvalidRequest,
    InvalidWebhook,
    NotFound,
    PaymentServiceError,
    RefundExceedsRemainder,
    ServiceUnavailable,
)

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = "5"


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


def _status_of(exc: PaymentServiceError) -> int:
    if isinstance(exc, InvalidWebhook):
        return status.HTTP_400_BAD_REQUEST
    if isinstance(exc, NotFound):
        return status.HTTP_404_NOT_FOUND
    if isinstance(exc, RefundExceedsRemainder | InvalidRequest | IdempotencyKeyReused):
        return status.HTTP_422_UNPROCESSABLE_CONTENT
    if isinstance(exc, Conflict):
        return status.HTTP_409_CONFLICT
    if isinstance(exc, GatewayNotFound):
        return status.HTTP_502_BAD_GATEWAY
    if isinstance(exc, ServiceUnavailable | GatewayError):
        return status.HTTP_503_SERVICE_UNAVAILABLE
    return status.HTTP_500_INTERNAL_SERVER_ERROR


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
        first = details[0] if details else ErrorDetail(field=None, message="invalid request")
        message = f"{first.field}: {first.message}" if first.field else first.message
        return error_response(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "validation_error",
            message,
            field=first.field,
            errors=details,
        )

    @app.exception_handler(PaymentServiceError)
    async def _domain(_request: Request, exc: PaymentServiceError) -> JSONResponse:
        code = _status_of(exc)
        headers = {"Retry-After": RETRY_AFTER_SECONDS} if code == 503 else None
        if code >= 500:
            log.warning("request failed", error=exc.code, message=exc.message)
        return error_response(code, exc.code, exc.message, field=exc.field, headers=headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable", error=type(exc).__name__)
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "service_unavailable",
            "the database is unavailable; retry later",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )

    @app.exception_handler(RPCError)
    async def _temporal_down(_request: Request, exc: RPCError) -> JSONResponse:
        log.warning("temporal unavailable", status=str(exc.status), error=exc.message)
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "service_unavailable",
            "the workflow service is unavailable; retry later",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )

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
