"""Temporal's remote codec endpoint: the Web UI and the CLI decode (and encode) payloads here,
since the Temporal server only ever stores ciphertext.

``POST /codec/decode`` and ``POST /codec/encode`` follow Temporal's codec server contract
(body ``{"payloads": [...]}`` in protobuf JSON, the ``X-Namespace`` header), for admins only:
with an admin key (``Authorization: Bearer``, as ``temporal workflow show --codec-endpoint …
--codec-auth 'Bearer psk_…'`` sends it) or with the session cookie a browser gets from
``POST /codec/session`` (the Temporal UI sends it with "Include cross-origin credentials").
CORS allows the UI's origins (API_CORS_ORIGINS) on these paths only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Cookie, Depends, Header, Request, Response
from fastapi.responses import HTMLResponse

from api.deps import AdminDep, ContainerDep, authenticate, bearer_scheme, session_principal
from api.errors import ERRORS
from api.sessions import COOKIE_NAME
from payments.access import Principal
from payments.errors import Forbidden, InvalidRequest, Unauthenticated
from workflows.codec import apply_codec

router = APIRouter(prefix="/codec", tags=["codec"])

PayloadsBody = Annotated[
    dict[str, Any],
    Body(
        description="Temporal Payloads in protobuf JSON: "
        '`{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}`',
        examples=[{"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IjEi"}]}],
    ),
]


async def codec_principal(
    request: Request,
    container: ContainerDep,
    session: Annotated[str | None, Cookie(alias=COOKIE_NAME, include_in_schema=False)] = None,
) -> Principal:
    """An admin, by key or by a session cookie whose key is still an active admin key."""
    if request.headers.get("authorization") or session is None:
        principal = await authenticate(request, await bearer_scheme(request))
    else:
        found = await session_principal(container, session)
        if found is None:
            raise Unauthenticated("the codec session is not valid (expired or revoked)")
        principal = found
    if not principal.is_admin:
        raise Forbidden("the codec endpoint needs an admin key")
    return principal


CodecPrincipal = Annotated[Principal, Depends(codec_principal)]
NamespaceHeader = Annotated[
    str | None,
    Header(alias="X-Namespace", max_length=255, description="The payloads' namespace."),
]


async def _apply(
    operation: Literal["encode", "decode"],
    body: dict[str, Any],
    namespace: str | None,
    container: ContainerDep,
) -> dict[str, Any]:
    expected = container.settings.temporal.namespace
    if namespace is not None and namespace != expected:
        raise InvalidRequest(f"this codec serves namespace {expected}", field="X-Namespace")
    return await apply_codec(container.payload_codec, operation, body)


@router.post("/decode", responses=ERRORS)
async def decode(
    body: PayloadsBody,
    container: ContainerDep,
    _principal: CodecPrincipal,
    namespace: NamespaceHeader = None,
) -> dict[str, Any]:
    """Decrypt payloads (any key of the ring); payloads that are not encrypted pass through."""
    return await _apply("decode", body, namespace, container)


@router.post("/encode", responses=ERRORS)
async def encode(
    body: PayloadsBody,
    container: ContainerDep,
    _principal: CodecPrincipal,
    namespace: NamespaceHeader = None,
) -> dict[str, Any]:
    """Encrypt payloads with the newest key (the UI encodes what an operator sends, e.g. a
    signal's input)."""
    return await _apply("encode", body, namespace, container)


@router.post("/session", status_code=204, responses=ERRORS)
async def start_session(request: Request, admin: AdminDep, container: ContainerDep) -> Response:
    """Trade an admin key for an HttpOnly session cookie that the Temporal UI, in this
    browser, sends to the codec endpoint. It lasts 8 hours and ends when the key is
    revoked."""
    return container.sessions.started(
        admin.key_id, cookie=COOKIE_NAME, path="/codec", https=request.url.scheme == "https"
    )


_LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Codec session</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Decode payloads in the Temporal UI</h1>
<p>Paste an <strong>admin</strong> API key. This browser then gets a session cookie (8 hours)
that the Temporal UI sends to this codec endpoint; tick <em>Include cross-origin
credentials</em> in the UI's codec server settings.</p>
<form id="f"><input id="k" type="password" size="60" autocomplete="off"
placeholder="psk_..."> <button>Start session</button></form>
<p id="r" role="status"></p>
<script>
document.getElementById("f").addEventListener("submit", async (e) => {
  e.preventDefault();
  const key = document.getElementById("k").value.trim();
  const answer = await fetch("session", {method: "POST",
    headers: {"Authorization": "Bearer " + key}, credentials: "same-origin"});
  document.getElementById("k").value = "";
  document.getElementById("r").textContent = answer.ok
    ? "Session started: reload the Temporal UI."
    : "Refused (" + answer.status + "): an active admin key is needed.";
});
</script></body></html>
"""


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_page() -> HTMLResponse:
    """A page where an operator starts a codec session in this browser."""
    return HTMLResponse(_LOGIN_PAGE)
