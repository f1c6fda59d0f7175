"""How the API and the consumer start and inspect workflows (ids, policies, summaries).

Workflow ids come from business keys (``payment-{payment_id}``, ``refund-{refund_id}``) and
duplicates are rejected, so a payment or refund can never run twice, whoever starts it and
however often.
"""

from __future__ import annotations

import asyncio
import contextlib

from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from payments.contracts import PaymentRequest, RefundRequest
from payments.money import Money
from workflows.payment import PaymentWorkflow
from workflows.refund import RefundWorkflow


def payment_workflow_id(payment_id: str) -> str:
    return f"payment-{payment_id}"


def refund_workflow_id(refund_id: str) -> str:
    return f"refund-{refund_id}"


class TemporalConnection:
    """Connects on first use and keeps the client, so a process can start (and report
    not-ready) while Temporal is still coming up."""

    def __init__(self, address: str, namespace: str) -> None:
        self._address = address
        self._namespace = namespace
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await Client.connect(self._address, namespace=self._namespace)
        return self._client


class PaymentWorkflows:
    """Starts PaymentWorkflow and RefundWorkflow; both starts are idempotent."""

    def __init__(self, connection: TemporalConnection, task_queue: str) -> None:
        self._connection = connection
        self._task_queue = task_queue

    async def start_payment(self, request: PaymentRequest) -> None:
        client = await self._connection.client()
        amount = Money(request.amount_minor, request.currency)
        # Already started (a retried request, a redelivered message): nothing to do.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await client.start_workflow(
                PaymentWorkflow.run,
                request,
                id=payment_workflow_id(request.payment_id),
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=(
                    f"Payment of {amount} {amount.currency} for order {request.order_id}"
                ),
            )

    async def start_refund(self, request: RefundRequest) -> None:
        client = await self._connection.client()
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await client.start_workflow(
                RefundWorkflow.run,
                request,
                id=refund_workflow_id(request.refund_id),
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"Refund {request.refund_id} of payment {request.payment_id}",
            )

    async def exists(self, workflow_id: str) -> bool:
        """Whether Temporal knows the workflow. Raises if Temporal cannot be asked."""
        client = await self._connection.client()
        try:
            description: WorkflowExecutionDescription = await client.get_workflow_handle(
                workflow_id
            ).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return description is not None

    async def ping(self) -> None:
        client = await self._connection.client()
        await client.service_client.check_health()
