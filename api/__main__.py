"""``python -m api``: serve the API with uvicorn on API_HOST:API_PORT."""

from __future__ import annotations

import socket
import sys

import uvicorn

from payments.config import get_settings


def main() -> int:
    settings = get_settings()
    host, port = settings.api.host, settings.api.port
    with socket.socket() as probe:
        # Same option as uvicorn, so a port in TIME_WAIT is not reported as busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            print(
                f"port {port} on {host} is already in use: stop what runs there or set API_PORT",
                file=sys.stderr,
            )
            return 1
    uvicorn.run(
        "api.main:app_factory",
        factory=True,
        host=host,
        port=port,
        log_config=None,  # our structlog configuration handles uvicorn's loggers
        access_log=True,
        # Idle keep-alive connections are closed by the client first, never by us: a server
        # that closes one just as the client reuses it makes the client's request fail with
        # "server disconnected" (httpx keeps idle connections 5 s, load balancers 60 s).
        timeout_keep_alive=75,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
