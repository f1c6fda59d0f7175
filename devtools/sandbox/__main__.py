"""``python -m devtools.sandbox``: serve the sandbox on SANDBOX_HOST:SANDBOX_PORT.

It accepts the merchant id and key pair of the BRAINTREE_* settings, so the service and the
sandbox agree by reading the same environment.
"""

from __future__ import annotations

import sys

import structlog
import uvicorn
from pydantic import ValidationError

from devtools.sandbox.app import create_sandbox_app
from devtools.sandbox.settings import SandboxSettings
from devtools.serving import bind_or_explain, print_setting_errors
from payments.config import GatewaySettings, LogSettings
from payments.logging import configure_logging

log = structlog.get_logger(__name__)


def main() -> int:
    try:
        sandbox = SandboxSettings()
        gateway = GatewaySettings()
        log_settings = LogSettings()
    except ValidationError as exc:
        print_setting_errors(exc)
        return 2
    configure_logging(log_settings, process="sandbox")
    sock = bind_or_explain(sandbox.host, sandbox.port, "SANDBOX_PORT")
    if sock is None:
        return 1

    app = create_sandbox_app(
        sandbox,
        gateway.merchant_id,
        gateway.public_key,
        gateway.private_key.get_secret_value(),
    )
    host, port = sock.getsockname()[:2]
    log.info(
        "sandbox_listening",
        url=f"http://{host}:{port}",
        merchant_id=gateway.merchant_id,
        settle_after_seconds=sandbox.settle_after_seconds,
        bank_settle_after_seconds=sandbox.bank_settle_after_seconds,
        webhook_url=sandbox.webhook_url,
        admin=f"http://{host}:{port}/_sandbox/transactions",
    )
    # uvicorn handles SIGINT/SIGTERM (graceful shutdown) since this runs on the main thread,
    # then re-raises the signal: Ctrl-C arrives here as KeyboardInterrupt after a clean stop.
    try:
        # log_config=None: uvicorn's own loggers go through configure_logging's handler; the
        # request log middleware already logs every request (access_log off).
        config = uvicorn.Config(app, log_config=None, access_log=False)
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        log.info("sandbox_stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
