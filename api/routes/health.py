"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ContainerDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


async def _kafka_reachable(bootstrap_servers: str) -> None:
    errors: list[str] = []
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _reader, writer = await asyncio.open_connection(host, int(port))
        except OSError as exc:
            errors.append(f"{server}: {exc.strerror or exc}")
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise ConnectionError("; ".join(errors))


@router.get("/readyz")
async def readyz(container: ContainerDep) -> JSONResponse:
    """The database, Temporal and Kafka are reachable (each checked with a timeout)."""
    timeout = container.settings.api.readiness_timeout_seconds
    checks: dict[str, Callable[[], Awaitable[None]]] = {
        "database": lambda: asyncio.to_thread(container.db.ping),
        "temporal": container.workflows.ping,
        "kafka": lambda: _kafka_reachable(container.settings.kafka.bootstrap_servers),
    }
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), timeout)
            results[name] = "ok"
        except Exception as exc:  # a readiness probe reports, it does not raise
            results[name] = f"unavailable: {type(exc).__name__}"
    ready = all(v == "ok" for v in results.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": results},
        status_code=200 if ready else 503,
    )
