"""Signed, short-lived sessions for the Temporal Web UI's calls to the codec endpoint.

The UI runs in the operator's browser and calls ``/codec/decode`` cross-origin; it can send
cookies ("Include cross-origin credentials" in its codec settings) but not our API key. An
operator therefore trades an admin key for a session cookie once (``POST /codec/session``).
The cookie names the key and an expiry, signed with HMAC-SHA256; it is checked against the
key on every use, so revoking the key ends its sessions at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from pydantic import SecretStr
from starlette.responses import Response

COOKIE_NAME = "payments_codec_session"


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str
    expires_at: int  # unix seconds


class SessionSigner:
    def __init__(self, secret: SecretStr | None, *, lifetime_seconds: int = 8 * 3600) -> None:
        # Without a configured secret, one per process: sessions end with the process.
        self._key = (
            secret.get_secret_value().encode() if secret is not None else secrets.token_bytes(32)
        )
        self.lifetime_seconds = lifetime_seconds

    def issue(self, key_id: str) -> str:
        expires = int(time.time()) + self.lifetime_seconds
        body = f"{key_id}.{expires}"
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str) -> Session | None:
        """The session a cookie holds, None if it is malformed, forged or expired."""
        key_id, _, rest = token.partition(".")
        expires, _, signature = rest.partition(".")
        if not key_id or not expires.isdigit() or not signature:
            return None
        if not hmac.compare_digest(signature, self._sign(f"{key_id}.{expires}")):
            return None
        if int(expires) < time.time():
            return None
        return Session(key_id=key_id, expires_at=int(expires))

    def started(self, key_id: str, *, cookie: str, path: str, https: bool) -> Response:
        """A 204 that sets the session cookie ``cookie`` of ``key_id`` for ``path``:
        HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it),
        Secure over HTTPS."""
        response = Response(status_code=204)
        response.set_cookie(
            cookie,
            self.issue(key_id),
            max_age=self.lifetime_seconds,
            path=path,
            httponly=True,
            secure=https,
            samesite="strict",
        )
        return response

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
