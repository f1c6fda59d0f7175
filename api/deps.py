"""FastAPI dependencies: what a route may ask for, taken from the app's container."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from payments.config import Settings
from payments.db.repository import PaymentRepository
from payments.gateway.types import PaymentGateway
from payments.service import PaymentService
from workflows.client import PaymentWorkflows


@dataclass(frozen=True)
class Container:
    """Everything the API's composition root (api/main.py) built for this process."""

    settings: Settings
    repository: PaymentRepository
    service: PaymentService
    workflows: PaymentWorkflows
    gateway: PaymentGateway


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def _repository(request: Request) -> PaymentRepository:
    return _container(request).repository


def _service(request: Request) -> PaymentService:
    return _container(request).service


def _gateway(request: Request) -> PaymentGateway:
    return _container(request).gateway


def _workflows(request: Request) -> PaymentWorkflows:
    return _container(request).workflows


ContainerDep = Annotated[Container, Depends(_container)]
RepositoryDep = Annotated[PaymentRepository, Depends(_repository)]
ServiceDep = Annotated[PaymentService, Depends(_service)]
GatewayDep = Annotated[PaymentGateway, Depends(_gateway)]
WorkflowsDep = Annotated[PaymentWorkflows, Depends(_workflows)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Repeat a POST with the same key to get the first result, never a second "
        "payment or refund. Same key with a different body: 422.",
    ),
]
