"""HTTP face of the sandbox.

Braintree's XML API, as far as the service uses it, under ``/merchants/{merchant_id}``:
Basic auth like Braintree (401 otherwise), the SDK's routes and response shapes: transactions,
customers and payment methods (the vault), and what a nonce pays with. Plus JSON endpoints
under ``/_sandbox`` that are not Braintree's: the transactions, requests and webhooks the
sandbox has seen, a health check, fault injection (error statuses, malformed bodies, delays,
optionally after the write took effect) to exercise the service's retry paths, and
client-side tokenization (what Braintree's client SDKs do: a card number, or a buyer's PayPal
approval, in; a single-use nonce out).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from secrets import compare_digest
from typing import Any, Literal

import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devtools.sandbox.render import (
    customer_fields,
    format_amount,
    nonce_fields,
    payment_method_document,
    transaction_fields,
    verification_fields,
)
from devtools.sandbox.scenarios import ValidationFailure
from devtools.sandbox.settings import SandboxSettings
from devtools.sandbox.store import (
    Result,
    SaleRequest,
    SandboxTransaction,
    TransactionStore,
    UnknownTransaction,
    UnsupportedSearch,
)
from devtools.sandbox.vault import (
    UnknownCustomer,
    UnknownPaymentMethod,
    Vault,
    VaultingAnswer,
)
from devtools.sandbox.webhooks import WebhookDispatcher
from devtools.sandbox.xml_codec import (
    MalformedXml,
    Parsed,
    Repeated,
    XmlArray,
    XmlValue,
    parse_document,
    render_document,
)

log = structlog.get_logger(__name__)

Operation = Literal[
    "sale",
    "find",
    "refund",
    "void",
    "submit_for_settlement",
    "settle",
    "search",
    "customer",
    "payment_method",
    "payment_method_nonce",
]
# Statuses of a sale the gateway refused: rendered as a 422 error response with the transaction.
DECLINED_STATUSES = frozenset({"processor_declined", "gateway_rejected", "failed"})
SEARCH_PAGE_SIZE = 50
REQUEST_LOG_SIZE = 1000
# What a "malformed" fault answers: XML cut short, as a proxy dropping a body would leave it.
MALFORMED_BODY = '<?xml version="1.0" encoding="UTF-8"?>\n<transaction><id>trunc'
# The SDK sends X-ApiVersion 6; older versions get 426 like from Braintree.
MIN_API_VERSION = 4
# Where a request stores what the request log should show about it (set by the handlers).
_LOG_SCOPE_KEY = "payments.sandbox.log"


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --- fault injection ---------------------------------------------------------------------------
class GatewayFault(BaseModel):
    """One failure to inject into the next ``times`` requests for ``operation``.

    kind=status answers ``status_code`` with an empty body; kind=malformed answers 200 with a
    truncated XML body; kind=delay waits ``delay_seconds`` and then answers normally;
    kind=drop starts an answer and drops the connection half-way (a reset connection). With
    ``after_processing`` the write takes effect first and only its answer is lost or late:
    the ambiguous failure that the service's api_request_key retries must survive.
    """

    operation: Operation | Literal["any"] = "any"
    kind: Literal["status", "malformed", "delay", "drop"] = "status"
    status_code: int = Field(default=503, ge=400, le=599)
    delay_seconds: float = Field(default=0.0, ge=0, le=120)
    after_processing: bool = False
    times: int = Field(default=1, ge=1)


@dataclass(slots=True)
class _ArmedFault:
    spec: GatewayFault
    remaining: int


class FaultInjector:
    def __init__(self) -> None:
        self._armed: list[_ArmedFault] = []

    def add(self, spec: GatewayFault) -> None:
        self._armed.append(_ArmedFault(spec, spec.times))

    def clear(self) -> None:
        self._armed.clear()

    def pending(self) -> list[dict[str, Any]]:
        return [{**f.spec.model_dump(), "remaining": f.remaining} for f in self._armed]

    def take(self, operation: Operation) -> GatewayFault | None:
        """The first armed fault matching ``operation``, used up once per request."""
        for armed in self._armed:
            if armed.spec.operation in (operation, "any"):
                armed.remaining -= 1
                if armed.remaining <= 0:
                    self._armed.remove(armed)
                return armed.spec
        return None


class ConnectionDropped(Exception):
    """Raised mid-response on purpose: the server closes the connection without finishing."""


class DroppedConnection(Response):
    """Announces a body and sends only part of it, then fails, so the server drops the
    connection: the client sees a broken connection, not an HTTP status."""

    def __init__(self) -> None:
        super().__init__(status_code=200, media_type="application/xml")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/xml"), (b"content-length", b"4096")],
            }
        )
        await send(
            {"type": "http.response.body", "body": MALFORMED_BODY.encode(), "more_body": True}
        )
        raise ConnectionDropped("fault injection: connection dropped")


# --- request log -------------------------------------------------------------------------------
class RequestLogMiddleware:
    """Records every Braintree API request (method, path, status, time and what the handler
    noted: operation, transaction id, order id, request key; never bodies, so never nonces)."""

    def __init__(self, app: ASGIApp, entries: deque[dict[str, Any]]) -> None:
        self.app = app
        self.entries = entries

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        received_at = _utc_now()
        status = 500

        async def send_and_capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_capture)
        finally:
            entry: dict[str, Any] = {
                "time": received_at.isoformat(),
                "method": scope["method"],
                "path": _loggable_path(scope["path"]),
                "status": status,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
                **scope.get(_LOG_SCOPE_KEY, {}),
            }
            self.entries.append(entry)
            log.info("sandbox_request", **entry)


_NONCE_PATH = "/payment_method_nonces/"


def _loggable_path(path: str) -> str:
    """The path without a nonce in it (a nonce pays: it reaches no log, path or body)."""
    head, found, _ = path.partition(_NONCE_PATH)
    return f"{head}{_NONCE_PATH}***" if found else path


def _note(request: Request, **fields: Any) -> None:
    notes: MutableMapping[str, Any] = request.scope.setdefault(_LOG_SCOPE_KEY, {})
    notes.update({k: v for k, v in fields.items() if v is not None})


# --- XML responses ---------------------------------------------------------------------------
def _xml(root: str, content: Mapping[str, XmlValue], status_code: int) -> Response:
    return Response(
        content=render_document(root, content),
        status_code=status_code,
        media_type="application/xml",
    )


def _errors_tree(failures: Sequence[ValidationFailure]) -> dict[str, XmlValue]:
    """Nest failures by path: ``<errors><errors type="array"/><transaction><errors ...>``."""
    tree: dict[str, Any] = {"errors": []}
    for failure in failures:
        node = tree
        for step in failure.path:
            node = node.setdefault(step, {"errors": []})
        node["errors"].append(
            {"code": failure.code, "attribute": failure.attribute, "message": failure.message}
        )

    def freeze(node: dict[str, Any]) -> dict[str, XmlValue]:
        return {
            key: XmlArray("error", value) if key == "errors" else freeze(value)
            for key, value in node.items()
        }

    return freeze(tree)


def _decline_message(tx: SandboxTransaction) -> str:
    if tx.status == "gateway_rejected":
        return f"Gateway Rejected: {tx.gateway_rejection_reason}"
    return tx.processor_response_text or tx.status


def _result_response(result: Result) -> Response:
    """Success: the transaction (201 if created). Decline: 422 with the transaction and no
    errors. Validation failure: 422 with the nested errors and no transaction."""
    if result.failures:
        return _failures_response(result.failures)
    tx = result.transaction
    assert tx is not None
    if tx.status in DECLINED_STATUSES:
        return _xml(
            "api_error_response",
            {
                "errors": {"errors": XmlArray("error", [])},
                "message": _decline_message(tx),
                "transaction": transaction_fields(tx),
            },
            422,
        )
    return _xml("transaction", transaction_fields(tx), 201 if result.created else 200)


def _failures_response(failures: Sequence[ValidationFailure]) -> Response:
    return _xml(
        "api_error_response",
        {
            "errors": _errors_tree(failures),
            "message": "\n".join(failure.message for failure in failures),
        },
        422,
    )


def _vault_response(result: VaultingAnswer) -> Response:
    """The payment method (201), or 422 with validation errors, or 422 with the failed
    verification and no errors (how Braintree reports a card that fails verify_card)."""
    if result.failures:
        return _failures_response(result.failures)
    if result.verification is not None:
        return _xml(
            "api_error_response",
            {
                "errors": {"errors": XmlArray("error", [])},
                "message": result.verification.message,
                "verification": verification_fields(result.verification),
            },
            422,
        )
    assert result.method is not None
    root, fields = payment_method_document(result.method)
    return _xml(root, fields, 201)


# --- client-side tokenization (JSON) -----------------------------------------------------------
class CardToTokenize(BaseModel):
    """What a client SDK sends. SecretStr: the number and CVV never appear in a repr or log."""

    model_config = ConfigDict(coerce_numbers_to_str=True, extra="ignore")

    number: SecretStr
    expiration_month: str
    expiration_year: str
    cvv: SecretStr | None = None


class PayPalBuyer(BaseModel):
    """The buyer a PayPal checkout approved (the sandbox asks nothing else of PayPal)."""

    model_config = ConfigDict(extra="forbid")

    # Up to 254 characters, as an e-mail address may be.
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")


def _client_error(status_code: int, code: str, message: str, field: str | None) -> Response:
    return JSONResponse(
        {"error": {"code": code, "message": message, "field": field}}, status_code=status_code
    )


# --- request parsing ---------------------------------------------------------------------------
async def _fields(request: Request, root: str) -> dict[str, Parsed]:
    """The fields under ``root`` in the body; empty for an empty body (void without a key)."""
    tag, fields = parse_document(await request.body())
    if tag and tag != root:
        raise MalformedXml(f"expected a <{root}> document, got <{tag}>")
    return fields


def _text(fields: Mapping[str, Parsed], name: str) -> str | None:
    value = fields.get(name)
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flag(fields: Mapping[str, Parsed], name: str) -> bool:
    value = fields.get(name)
    return value is True or value == "true"


def _section(fields: Mapping[str, Parsed], name: str) -> dict[str, Parsed]:
    value = fields.get(name)
    return value if isinstance(value, dict) else {}


def _admin_view(tx: SandboxTransaction) -> dict[str, Any]:
    return {
        "id": tx.id,
        "type": tx.type,
        "status": tx.status,
        "amount": format_amount(tx.amount, tx.currency),
        "currency": tx.currency,
        "order_id": tx.order_id,
        "request_key": tx.request_key,
        "merchant_account_id": tx.merchant_account_id,
        "processor_response_code": tx.processor_response_code,
        "gateway_rejection_reason": tx.gateway_rejection_reason,
        "refund_ids": list(tx.refund_ids),
        "refunded_transaction_id": tx.refunded_transaction_id,
        "payment_instrument_type": tx.instrument.type,
        "customer_id": tx.customer_id,
        "created_at": tx.created_at.isoformat(),
        "updated_at": tx.updated_at.isoformat(),
    }


# --- the app -----------------------------------------------------------------------------------
def create_sandbox_app(
    settings: SandboxSettings,
    merchant_id: str,
    public_key: str,
    private_key: str,
    *,
    clock: Callable[[], datetime] | None = None,
    default_currency: str = "USD",
    merchant_account_currencies: Mapping[str, str] | None = None,
) -> FastAPI:
    """A Braintree-compatible sandbox accepting exactly these merchant id and keys.

    ``clock`` (UTC datetimes) drives settlement: tests inject one to settle without waiting.
    Sales without a merchant_account_id are in ``default_currency``; a merchant account id is
    looked up in ``merchant_account_currencies``, else its trailing ISO code counts
    ("acme-EUR"), else it is refused (91513). Bank transfers settle after
    ``settings.bank_settle_after_seconds``; with ``settings.webhook_url`` the app's lifespan
    runs a dispatcher that announces lazy settlements there (see ``webhooks``).
    """
    now = clock or _utc_now
    vault = Vault(clock=now)
    store = TransactionStore(
        settle_after_seconds=settings.settle_after_seconds,
        bank_settle_after_seconds=settings.bank_settle_after_seconds,
        clock=now,
        default_merchant_account_id=merchant_id,
        default_currency=default_currency,
        merchant_account_currencies=merchant_account_currencies,
        vault=vault,
        record_settlements=settings.webhook_url is not None,
    )
    faults = FaultInjector()
    request_log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
    credentials = (public_key.encode(), private_key.encode())
    webhooks = (
        WebhookDispatcher(
            url=settings.webhook_url,
            store=store,
            public_key=public_key,
            private_key=private_key,
            clock=now,
        )
        if settings.webhook_url is not None
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Runs the webhook dispatcher (if a webhook URL is set) while the app serves."""
        if webhooks is None:
            yield
            return
        task = asyncio.create_task(webhooks.run(), name="sandbox-webhooks")
        log.info("sandbox_webhooks_enabled", url=webhooks.url)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await webhooks.aclose()

    app = FastAPI(
        title="Braintree-compatible sandbox",
        description="Development and tests only. Not Braintree; speaks its XML API.",
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.vault = vault
    app.state.webhooks = webhooks
    app.state.faults = faults
    app.state.request_log = request_log
    app.add_middleware(RequestLogMiddleware, entries=request_log)

    def authenticate(request: Request, merchant_id_in_path: str) -> None:
        """Basic auth with the public/private key pair, for this merchant only (like Braintree,
        a key pair of another merchant is an authentication failure)."""
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        user, password = b"", b""
        if scheme.lower() == "basic":
            with contextlib.suppress(binascii.Error, ValueError):
                user, _, password = base64.b64decode(encoded, validate=True).partition(b":")
        valid = compare_digest(user, credentials[0]) & compare_digest(password, credentials[1])
        if not valid or merchant_id_in_path != merchant_id:
            raise HTTPException(401, headers={"WWW-Authenticate": 'Basic realm="sandbox"'})
        version = request.headers.get("x-apiversion")
        if version is not None and (not version.isdigit() or int(version) < MIN_API_VERSION):
            raise HTTPException(426)

    async def respond(
        request: Request, operation: Operation, handler: Callable[[], Response]
    ) -> Response:
        """Run ``handler`` (the store operation and its rendering) through any armed fault."""
        fault = faults.take(operation)
        _note(request, operation=operation)
        if fault is None:
            return handler()
        _note(request, fault=fault.kind)
        if fault.kind == "delay":
            if fault.after_processing:
                response = handler()
                await asyncio.sleep(fault.delay_seconds)
                return response
            await asyncio.sleep(fault.delay_seconds)
            return handler()
        if fault.after_processing:
            handler()  # the write takes effect; the client never sees its answer
        if fault.kind == "status":
            return Response(status_code=fault.status_code)
        if fault.kind == "drop":
            return DroppedConnection()
        return Response(content=MALFORMED_BODY, status_code=200, media_type="application/xml")

    api = APIRouter(prefix="/merchants/{merchant_id_in_path}", dependencies=[Depends(authenticate)])

    @api.post("/transactions")
    async def sale(request: Request) -> Response:
        fields = await _fields(request, "transaction")
        sale_request = SaleRequest(
            amount=_text(fields, "amount"),
            payment_method_nonce=_text(fields, "payment_method_nonce"),
            payment_method_token=_text(fields, "payment_method_token"),
            order_id=_text(fields, "order_id"),
            submit_for_settlement=_flag(_section(fields, "options"), "submit_for_settlement"),
            merchant_account_id=_text(fields, "merchant_account_id"),
            request_key=_text(fields, "api_request_key"),
            type=_text(fields, "type"),
        )
        _note(request, order_id=sale_request.order_id, request_key=sale_request.request_key)

        def handle() -> Response:
            result = store.sale(sale_request)
            if result.transaction is not None:
                _note(request, transaction_id=result.transaction.id)
            return _result_response(result)

        return await respond(request, "sale", handle)

    @api.get("/transactions/{transaction_id}")
    async def find(request: Request, transaction_id: str) -> Response:
        _note(request, transaction_id=transaction_id)
        return await respond(
            request,
            "find",
            lambda: _xml("transaction", transaction_fields(store.get(transaction_id)), 200),
        )

    @api.post("/transactions/{transaction_id}/refund")
    async def refund(request: Request, transaction_id: str) -> Response:
        fields = await _fields(request, "transaction")
        request_key = _text(fields, "api_request_key")
        _note(request, transaction_id=transaction_id, request_key=request_key)
        return await respond(
            request,
            "refund",
            lambda: _result_response(
                store.refund(
                    transaction_id,
                    amount=_text(fields, "amount"),
                    order_id=_text(fields, "order_id"),
                    request_key=request_key,
                )
            ),
        )

    @api.put("/transactions/{transaction_id}/void")
    async def void(request: Request, transaction_id: str) -> Response:
        fields = await _fields(request, "transaction")
        request_key = _text(fields, "api_request_key")
        _note(request, transaction_id=transaction_id, request_key=request_key)
        return await respond(
            request,
            "void",
            lambda: _result_response(store.void(transaction_id, request_key=request_key)),
        )

    @api.put("/transactions/{transaction_id}/submit_for_settlement")
    async def submit_for_settlement(request: Request, transaction_id: str) -> Response:
        fields = await _fields(request, "transaction")
        request_key = _text(fields, "api_request_key")
        _note(request, transaction_id=transaction_id, request_key=request_key)
        return await respond(
            request,
            "submit_for_settlement",
            lambda: _result_response(
                store.submit_for_settlement(
                    transaction_id, amount=_text(fields, "amount"), request_key=request_key
                )
            ),
        )

    def add_testing_route(path: str, target_status: str) -> None:
        async def simulate(request: Request, transaction_id: str) -> Response:
            _note(request, transaction_id=transaction_id)
            return await respond(
                request,
                "settle",
                lambda: _result_response(store.simulate_settlement(transaction_id, target_status)),
            )

        api.add_api_route(f"/transactions/{{transaction_id}}/{path}", simulate, methods=["PUT"])

    # The SDK's gateway.testing.* helpers (refused by the SDK itself against production).
    add_testing_route("settle", "settled")
    add_testing_route("settlement_confirm", "settled")
    add_testing_route("settlement_decline", "settlement_declined")
    add_testing_route("settlement_pending", "settlement_pending")

    @api.post("/transactions/advanced_search_ids")
    async def search_ids(request: Request) -> Response:
        criteria = await _fields(request, "search")
        return await respond(
            request,
            "search",
            lambda: _xml(
                "search_results",
                {
                    "page_size": SEARCH_PAGE_SIZE,
                    "ids": XmlArray("item", [tx.id for tx in store.search(criteria)]),
                },
                200,
            ),
        )

    @api.post("/transactions/advanced_search")
    async def search(request: Request) -> Response:
        # The SDK repeats the criteria with the page's ids added.
        criteria = await _fields(request, "search")

        def handle() -> Response:
            matches = store.search(criteria)
            return _xml(
                "credit_card_transactions",
                {
                    "current_page_number": 1,
                    "page_size": SEARCH_PAGE_SIZE,
                    "total_items": len(matches),
                    "transaction": Repeated([transaction_fields(tx) for tx in matches]),
                },
                200,
            )

        return await respond(request, "search", handle)

    # --- the vault ----------------------------------------------------------------------------
    @api.post("/customers")
    async def create_customer(request: Request) -> Response:
        fields = await _fields(request, "customer")
        customer_id = _text(fields, "id")
        _note(request, customer_id=customer_id)

        def handle() -> Response:
            created = vault.create_customer(
                customer_id,
                first_name=_text(fields, "first_name"),
                last_name=_text(fields, "last_name"),
                email=_text(fields, "email"),
                company=_text(fields, "company"),
                phone=_text(fields, "phone"),
            )
            if isinstance(created, ValidationFailure):
                return _failures_response([created])
            _note(request, customer_id=created.id)
            return _xml("customer", customer_fields(created, []), 201)

        return await respond(request, "customer", handle)

    @api.get("/customers/{customer_id}")
    async def find_customer(request: Request, customer_id: str) -> Response:
        _note(request, customer_id=customer_id)
        return await respond(
            request,
            "customer",
            lambda: _xml("customer", customer_fields(*vault.customer(customer_id)), 200),
        )

    @api.post("/payment_methods")
    async def create_payment_method(request: Request) -> Response:
        fields = await _fields(request, "payment_method")
        customer_id = _text(fields, "customer_id")
        _note(request, customer_id=customer_id)
        options = _section(fields, "options")

        def handle() -> Response:
            result = vault.create_payment_method(
                customer_id=customer_id,
                nonce=_text(fields, "payment_method_nonce"),
                token=_text(fields, "token"),
                verify_card=_flag(options, "verify_card"),
                make_default=_flag(options, "make_default"),
            )
            return _vault_response(result)

        return await respond(request, "payment_method", handle)

    @api.get("/payment_methods/any/{token}")
    async def find_payment_method(request: Request, token: str) -> Response:
        def handle() -> Response:
            root, fields = payment_method_document(vault.payment_method(token))
            return _xml(root, fields, 200)

        return await respond(request, "payment_method", handle)

    @api.delete("/payment_methods/any/{token}")
    async def delete_payment_method(request: Request, token: str) -> Response:
        def handle() -> Response:
            vault.delete_payment_method(token)
            return Response(status_code=200)

        return await respond(request, "payment_method", handle)

    @api.get("/payment_method_nonces/{nonce}")
    async def find_payment_method_nonce(request: Request, nonce: str) -> Response:
        """What a nonce pays with, without using it up (it can still pay afterwards, as
        Braintree's can). A used nonce is found, marked consumed; an unknown one is 404."""

        def handle() -> Response:
            described = vault.describe_nonce(nonce)
            if described is None:
                return Response(status_code=404)
            fields = nonce_fields(nonce, described.instrument, consumed=described.consumed)
            return _xml("payment_method_nonce", fields, 200)

        return await respond(request, "payment_method_nonce", handle)

    @api.api_route("/{unsupported:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    async def not_implemented(request: Request, unsupported: str) -> Response:
        # 501 rather than 404: the SDK would report a 404 as "not found", hiding that the
        # sandbox lacks the route (customers, payment methods, subscriptions...).
        return PlainTextResponse(f"the sandbox does not implement /{unsupported}", 501)

    app.include_router(api)

    @app.exception_handler(UnknownTransaction)
    async def unknown_transaction(request: Request, exc: UnknownTransaction) -> Response:
        return Response(status_code=404)

    @app.exception_handler(UnknownCustomer)
    async def unknown_customer(request: Request, exc: UnknownCustomer) -> Response:
        return Response(status_code=404)

    @app.exception_handler(UnknownPaymentMethod)
    async def unknown_payment_method(request: Request, exc: UnknownPaymentMethod) -> Response:
        return Response(status_code=404)

    @app.exception_handler(MalformedXml)
    async def malformed(request: Request, exc: MalformedXml) -> Response:
        return PlainTextResponse(str(exc), 400)

    @app.exception_handler(UnsupportedSearch)
    async def unsupported_search(request: Request, exc: UnsupportedSearch) -> Response:
        return PlainTextResponse(str(exc), 400)

    # --- admin (JSON, not Braintree's) ----------------------------------------------------------
    admin = APIRouter(prefix="/_sandbox", tags=["sandbox admin"])

    @admin.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "merchant_id": merchant_id}

    @admin.get("/transactions")
    async def list_transactions(
        order_id: str | None = None, request_key: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            _admin_view(tx)
            for tx in store.all()
            if (order_id is None or tx.order_id == order_id)
            and (request_key is None or tx.request_key == request_key)
            and (status is None or tx.status == status)
        ]

    @admin.get("/webhooks")
    async def list_webhooks() -> list[dict[str, Any]]:
        """Every webhook delivery and its attempts, oldest first (empty without a webhook URL)."""
        return [delivery.view() for delivery in webhooks.deliveries] if webhooks else []

    @admin.post("/client/tokenize", response_model=None)
    async def tokenize(request: Request) -> Response | dict[str, Any]:
        """A card in (JSON: number, expiration_month, expiration_year, cvv), a single-use nonce
        out, as Braintree's client SDKs get one. Refusals (400) never echo what was sent."""
        try:
            card = CardToTokenize.model_validate(await request.json())
        except ValidationError as exc:
            fields = ",".join(sorted({".".join(map(str, e["loc"])) for e in exc.errors()}))
            return _client_error(400, "invalid_request", "Missing or invalid card fields.", fields)
        except ValueError:  # not JSON
            return _client_error(400, "invalid_request", "Expected a JSON body.", None)
        result = vault.tokenize_card(
            card.number.get_secret_value(),
            card.expiration_month,
            card.expiration_year,
            card.cvv.get_secret_value() if card.cvv is not None else None,
        )
        if isinstance(result, ValidationFailure):
            return _client_error(400, result.code, result.message, result.attribute)
        return {
            "nonce": result.nonce,
            "type": "CreditCard",
            "details": {"card_type": result.card_type, "bin": result.bin, "last_4": result.last_4},
        }

    @admin.post("/client/paypal")
    async def paypal_checkout(buyer: PayPalBuyer) -> dict[str, Any]:
        """A one-time PayPal payment approved by ``email``: a single-use nonce out, as the
        client SDK's PayPal checkout gets one."""
        return {
            "nonce": vault.tokenize_paypal(buyer.email),
            "type": "PayPalAccount",
            "details": {"email": buyer.email},
        }

    @admin.get("/requests")
    async def list_requests() -> list[dict[str, Any]]:
        return list(request_log)

    @admin.get("/faults")
    async def list_faults() -> list[dict[str, Any]]:
        return faults.pending()

    @admin.post("/faults", status_code=201)
    async def add_fault(spec: GatewayFault) -> list[dict[str, Any]]:
        faults.add(spec)
        return faults.pending()

    @admin.delete("/faults", status_code=204)
    async def clear_faults() -> None:
        faults.clear()

    app.include_router(admin)
    return app
