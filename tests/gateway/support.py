"""Helpers for the gateway tests: a controllable clock, settings, starting a sandbox, and a
webhook receiver."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs

from pydantic import SecretStr

from devtools.sandbox import create_sandbox_app
from devtools.sandbox.settings import SandboxSettings
from devtools.serving import BackgroundServer
from payments.config import GatewaySettings

MERCHANT_ID = "test-merchant"
PUBLIC_KEY = "test-public-key"
PRIVATE_KEY = "test-private-key"
# Long enough that nothing settles by itself during the session: tests settle by moving the
# clock (ManualClock.advance) instead of waiting.
SETTLE_AFTER_SECONDS = 60.0
BANK_SETTLE_AFTER_SECONDS = 120.0


class ManualClock:
    """Real time plus an offset that tests move forward (read from the server's thread)."""

    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)


def gateway_settings(port: int, **overrides: object) -> GatewaySettings:
    values: dict[str, object] = {
        "environment": "local",
        "merchant_id": MERCHANT_ID,
        "public_key": PUBLIC_KEY,
        "private_key": SecretStr(PRIVATE_KEY),
        "local_host": "127.0.0.1",
        "local_port": port,
        "timeout_seconds": 2,
    }
    values.update(overrides)
    return GatewaySettings.model_validate(values)


def start_sandbox(
    settle_after_seconds: float,
    clock: ManualClock | None = None,
    *,
    bank_settle_after_seconds: float = BANK_SETTLE_AFTER_SECONDS,
    webhook_url: str | None = None,
) -> BackgroundServer:
    settings = SandboxSettings(
        host="127.0.0.1",
        port=0,
        settle_after_seconds=settle_after_seconds,
        bank_settle_after_seconds=bank_settle_after_seconds,
        webhook_url=webhook_url,
    )
    app = create_sandbox_app(settings, MERCHANT_ID, PUBLIC_KEY, PRIVATE_KEY, clock=clock)
    return BackgroundServer(app).start()


@dataclass(frozen=True, slots=True)
class ReceivedWebhook:
    content_type: str
    bt_signature: str
    bt_payload: str


class WebhookReceiver:
    """A stdlib HTTP server on a free port, in a thread, that keeps every form POSTed to it.

    ``fail_first`` requests are answered 500 (a receiver having trouble), the rest 200.
    """

    def __init__(self, *, fail_first: int = 0) -> None:
        self.received: list[ReceivedWebhook] = []
        self.requests = 0
        self._fail_first = fail_first
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.requests += 1
                    failing = receiver.requests <= receiver._fail_first
                    if not failing:
                        form = parse_qs(body.decode("ascii"))
                        receiver.received.append(
                            ReceivedWebhook(
                                self.headers.get("Content-Type", ""),
                                form["bt_signature"][0],
                                form["bt_payload"][0],
                            )
                        )
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet test output

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/braintree"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedWebhook]:
        """The first ``count`` webhooks received, waiting for them up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} webhooks, got {len(self.received)}")

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
