"""Prometheus metrics (admin: Prometheus scrapes with an admin key as its bearer token)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import AdminDep
from api.metrics import ApiMetrics

router = APIRouter(tags=["admin"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, _admin: AdminDep) -> Response:
    """Requests by route and status with their latency; payments by status and method and
    refunds by status, as the database holds them."""
    registry: ApiMetrics = request.app.state.metrics
    body = await asyncio.to_thread(registry.exposition)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
