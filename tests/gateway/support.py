"""Helpers for the gateway tests: a controllable clock, settings, starting a sandbox."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from payments.config import GatewaySettings, SandboxSettings
from payments.gateway.sandbox import SandboxServer, create_sandbox_app

MERCHANT_ID = "test-merchant"
PUBLIC_KEY = "test-public-key"
PRIVATE_KEY = "test-private-key"
# Long enough that nothing settles by itself during the session: tests settle by moving the
# clock (ManualClock.advance) instead of waiting.
SETTLE_AFTER_SECONDS = 60.0


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


def start_sandbox(settle_after_seconds: float, clock: ManualClock | None = None) -> SandboxServer:
    settings = SandboxSettings(host="127.0.0.1", port=0, settle_after_seconds=settle_after_seconds)
    app = create_sandbox_app(settings, MERCHANT_ID, PUBLIC_KEY, PRIVATE_KEY, clock=clock)
    return SandboxServer(app).start()
