"""How the API, the consumer and the worker start, signal and inspect workflows.

Workflow ids come from business keys (``payment-{payment_id}``, ``refund-{refund_id}``) and
duplicates are rejected, so a payment or refund can never run twice, whoever starts it and
however often.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleAction,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.converter import PayloadCodec
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from payments.config import PolicySettings, Settings
from payments.contracts import (
    PaymentRequest,
    PaymentSnapshot,
    ReconciliationRequest,
    RefundRequest,
    RefundSnapshot,
    RemovePaymentMethodRequest,
    ReviewDecision,
    VaultRequest,
)
from payments.errors import Conflict, NotSent
from payments.keyring import DecryptionFailed
from payments.money import Money
from workflows.connection import TemporalConnectOptions, temporal_connect_options
from workflows.payment import PaymentWorkflow
from workflows.payment_methods import RemovePaymentMethodWorkflow, VaultPaymentMethodWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.refund import RefundWorkflow
from workflows.search_attributes import payment_attributes, refund_attributes


def _intervals(spec: ScheduleSpec) -> list[tuple[timedelta, timedelta]]:
    return [(i.every, i.offset or timedelta(0)) for i in spec.intervals]


def reconciliation_schedule_id(task_queue: str) -> str:
    """One schedule per deployment (task queue) sharing a Temporal namespace."""
    return f"reconciliation-{task_queue}"


# How long reconciliation waits for a running payment to say when it checks next. A worker
# answers a query in milliseconds; none answers while the payment's worker is down.
PROGRESS_QUERY_TIMEOUT = timedelta(seconds=5)
# How much longer than its own wait an update-with-start may take to answer (the trip there
# and back) before the caller stops waiting.
OUTCOME_WAIT_MARGIN_SECONDS = 2.0

T = TypeVar("T")
InputT = TypeVar("InputT")
WorkflowT = TypeVar("WorkflowT")
OutcomeT = TypeVar("OutcomeT")
log = structlog.get_logger(__name__)


def payment_workflow_id(payment_id: str) -> str:
    return f"payment-{payment_id}"


def refund_workflow_id(refund_id: str) -> str:
    return f"refund-{refund_id}"


class TemporalConnection:
    """Connects on first use and keeps the client, so a process can start (and report
    not-ready) while Temporal is still coming up.

    Built with :meth:`for_settings` in composition roots: the options (TLS, API key, payload
    encryption) are resolved at once, so a misconfiguration stops the process at start-up
    rather than at its first payment.
    """

    def __init__(self, options: TemporalConnectOptions) -> None:
        self._options = options
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> TemporalConnection:
        """Raises the ValueErrors of :func:`temporal_connect_options` on misconfiguration."""
        return cls(temporal_connect_options(settings))

    @classmethod
    def of(cls, client: Client) -> TemporalConnection:
        """An already connected client (the worker's own; tests')."""
        connection = cls(
            TemporalConnectOptions(
                target_host=client.service_client.config.target_host,
                namespace=client.namespace,
                data_converter=client.data_converter,
                interceptors=client.config()["interceptors"],
            )
        )
        connection._client = client
        return connection

    @property
    def payload_codec(self) -> PayloadCodec | None:
        """The codec payloads are encrypted with (the API's remote codec endpoint serves it);
        None for a client connected without one."""
        return self._options["data_converter"].payload_codec

    async def client(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    try:
                        self._client = await Client.connect(**self._options)
                    except RuntimeError as exc:  # the SDK's "Failed client connect"
                        raise NotSent(
                            f"Temporal is not reachable at {self._options['target_host']}"
                        ) from exc
        return self._client


class PaymentWorkflows:
    """Starts, signals and inspects this service's workflows; every start is idempotent."""

    def __init__(
        self, connection: TemporalConnection, task_queue: str, policy: PolicySettings
    ) -> None:
        self._connection = connection
        self._task_queue = task_queue
        self._policy = policy

    async def start_payment(
        self, request: PaymentRequest, *, wait_seconds: float | None = None
    ) -> PaymentSnapshot | None:
        """Start the payment's workflow (nothing to do if it runs or ran already). With
        ``wait_seconds``: started together with its ``outcome`` update (update-with-start,
        one request), answering the payment once final within that time, else None."""
        amount = Money(request.amount_minor, request.currency)
        return await self._start(
            PaymentWorkflow.run,
            request,
            PaymentWorkflow.outcome,
            workflow_id=payment_workflow_id(request.payment_id),
            summary=f"Payment of {amount} {amount.currency} for order {request.order_id}",
            reuse=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            wait_seconds=wait_seconds,
            search_attributes=payment_attributes(request),
        )

    async def start_refund(
        self,
        refund_id: str,
        payment_id: str,
        *,
        created_at: datetime,
        restart: bool = False,
        wait_seconds: float | None = None,
    ) -> RefundSnapshot | None:
        """``restart``: run again even if an earlier run closed (reconciliation found the
        refund still initiated with no workflow); safe, the gateway call reuses its key.
        The wait for settlement ends ``created_at`` (the refund row's) plus the policy's
        deadline, whichever run is waiting. ``wait_seconds``: as for :meth:`start_payment`."""
        policy = self._policy.refund_policy()
        deadline = created_at + timedelta(seconds=policy.settlement_deadline_seconds)
        request = RefundRequest(
            refund_id=refund_id,
            payment_id=payment_id,
            policy=policy,
            deadline_at=deadline.isoformat(),
        )
        return await self._start(
            RefundWorkflow.run,
            request,
            RefundWorkflow.outcome,
            workflow_id=refund_workflow_id(refund_id),
            summary=f"Refund {refund_id} of payment {payment_id}",
            reuse=(
                WorkflowIDReusePolicy.ALLOW_DUPLICATE
                if restart
                else WorkflowIDReusePolicy.REJECT_DUPLICATE
            ),
            wait_seconds=wait_seconds,
            search_attributes=refund_attributes(request),
        )

    async def _start(
        self,
        run: Callable[[WorkflowT, InputT], Awaitable[Any]],
        request: InputT,
        outcome: UpdateMethodMultiParam[[WorkflowT, float], OutcomeT | None],
        *,
        workflow_id: str,
        summary: str,
        reuse: WorkflowIDReusePolicy,
        wait_seconds: float | None,
        search_attributes: TypedSearchAttributes,
    ) -> OutcomeT | None:
        """Start ``run`` (nothing to do if it runs or ran already under ``reuse``). With
        ``wait_seconds``: together with its ``outcome`` update (update-with-start, one
        request) — its answer, or None when there is none in time."""
        client = await self._connection.client()
        if wait_seconds is None:
            # Already started (a retried request, a redelivered message): nothing to do.
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await client.start_workflow(
                    run,
                    request,
                    id=workflow_id,
                    task_queue=self._task_queue,
                    id_reuse_policy=reuse,
                    static_summary=summary,
                    search_attributes=search_attributes,
                )
            return None
        start = WithStartWorkflowOperation(
            run,
            request,
            id=workflow_id,
            task_queue=self._task_queue,
            # A run already going: wait on it instead.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=reuse,
            static_summary=summary,
            search_attributes=search_attributes,
        )
        answer: OutcomeT | None = await self._start_and_wait(
            client,
            workflow_id,
            client.execute_update_with_start_workflow(
                outcome, wait_seconds, start_workflow_operation=start
            ),
            wait_seconds,
        )
        return answer

    async def _start_and_wait(
        self, client: Client, workflow_id: str, call: Awaitable[T], wait_seconds: float
    ) -> T | None:
        """Run an update-with-start ``call``: its answer, or None when there is none in time
        but the workflow runs (or ran: a closed run's outcome is in the database). Errors
        are raised only while the workflow may not exist, so that the caller can undo the
        row it wrote for it."""
        try:
            # The update answers by itself within wait_seconds; the margin covers the trip.
            return await asyncio.wait_for(call, wait_seconds + OUTCOME_WAIT_MARGIN_SECONDS)
        except WorkflowAlreadyStartedError:
            return None  # an earlier run closed (REJECT_DUPLICATE): it recorded the outcome
        except WorkflowUpdateFailedError as exc:
            # Started, but the update was refused or failed: no synchronous answer.
            log.warning("no synchronous answer", workflow_id=workflow_id, error=str(exc.cause))
            return None
        except (RPCError, TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            if await self.exists(workflow_id):
                return None
            raise

    async def vault(self, request: VaultRequest, *, wait_seconds: float) -> bool:
        """Start the vaulting workflow and wait up to ``wait_seconds`` for it: True if it
        finished (its outcome is on the payment method's row), False if it still runs (the
        caller answers "pending"; the workflow records the outcome when the gateway
        answers)."""
        client = await self._connection.client()
        handle = await client.start_workflow(
            VaultPaymentMethodWorkflow.run,
            request,
            id=f"vault-{request.payment_method_id}",
            task_queue=self._task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Vault payment method {request.payment_method_id}",
        )
        try:
            await asyncio.wait_for(handle.result(), wait_seconds)
        except TimeoutError:
            return False
        except WorkflowFailureError:
            return True  # the row says what happened (or stays pending: the caller decides)
        return True

    async def remove_payment_method(self, payment_method_id: str) -> None:
        client = await self._connection.client()
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await client.start_workflow(
                RemovePaymentMethodWorkflow.run,
                RemovePaymentMethodRequest(payment_method_id),
                id=f"remove-payment-method-{payment_method_id}",
                task_queue=self._task_queue,
            )

    async def nudge_payment(self, payment_id: str) -> bool:
        """Ask a pending payment to check the gateway now. False if its workflow is not
        running (nothing to nudge)."""
        return await self._nudge(payment_workflow_id(payment_id), PaymentWorkflow.check_now)

    async def nudge_refund(self, refund_id: str) -> bool:
        """Ask a refund waiting for its sale to settle to try now (False if not running)."""
        return await self._nudge(refund_workflow_id(refund_id), RefundWorkflow.check_now)

    async def _nudge(self, workflow_id: str, signal: Callable[[Any], None]) -> bool:
        client = await self._connection.client()
        try:
            await client.get_workflow_handle(workflow_id).signal(signal)
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                return False
            raise
        return True

    async def payment_next_check_at(self, payment_id: str) -> str | None:
        """When the running payment checks the gateway next by itself (ISO 8601; "" when it
        is not waiting to), from its ``progress`` query: no history event. None when no
        worker answered in time or the workflow is gone."""
        client = await self._connection.client()
        handle = client.get_workflow_handle(payment_workflow_id(payment_id))
        try:
            progress = await handle.query(
                PaymentWorkflow.progress, rpc_timeout=PROGRESS_QUERY_TIMEOUT
            )
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
            return None
        return str(progress.get("next_check_at", ""))

    async def cancel_payment(self, payment_id: str) -> None:
        """Stop a payment waiting to retry a soft decline; returns once the workflow has
        recorded the failure. Conflict if it is not waiting (the workflow's update validator
        refuses, atomically with its state)."""
        client = await self._connection.client()
        try:
            await client.get_workflow_handle(payment_workflow_id(payment_id)).execute_update(
                PaymentWorkflow.cancel
            )
        except WorkflowUpdateFailedError as exc:
            cause = str(exc.cause) if exc.cause is not None else str(exc)
            raise Conflict(f"payment {payment_id} cannot be cancelled: {cause}") from None
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise Conflict(f"payment {payment_id} is not running") from None
            raise

    async def review_payment(
        self, payment_id: str, decision: ReviewDecision, *, wait_seconds: float
    ) -> PaymentSnapshot | None:
        """Give an operator's decision to a payment held for review. Returns the payment as
        recorded once captured or voided, or None if that takes longer than
        ``wait_seconds`` (the decision is accepted and will be carried out). Conflict if
        the payment is not held for review (the update's validator refuses, atomically with
        the workflow's state) or its workflow has ended."""
        client = await self._connection.client()
        try:
            handle = await client.get_workflow_handle(payment_workflow_id(payment_id)).start_update(
                PaymentWorkflow.review,
                decision,
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            )
        except WorkflowUpdateFailedError as exc:
            cause = str(exc.cause) if exc.cause is not None else str(exc)
            raise Conflict(f"payment {payment_id} cannot be reviewed: {cause}") from None
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise Conflict(f"payment {payment_id} is not held for review") from None
            raise
        try:
            return await asyncio.wait_for(handle.result(), wait_seconds)
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            return None

    async def payment_is_running(self, payment_id: str) -> bool:
        return await self._is_running(payment_workflow_id(payment_id))

    async def refund_is_running(self, refund_id: str) -> bool:
        return await self._is_running(refund_workflow_id(refund_id))

    async def _is_running(self, workflow_id: str) -> bool:
        client = await self._connection.client()
        try:
            description = await client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return description.status == WorkflowExecutionStatus.RUNNING

    async def exists(self, workflow_id: str) -> bool:
        """Whether Temporal knows the workflow. Raises if Temporal cannot be asked."""
        client = await self._connection.client()
        try:
            await client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def ensure_reconciliation_schedule(self) -> None:
        """Create the reconciliation schedule if missing; otherwise bring its interval and
        the pass's settings up to date when they changed, and leave the rest as it is: an
        operator's pause (and its note) holds across worker restarts."""
        client = await self._connection.client()
        request = self._policy.reconciliation_request()
        spec = ScheduleSpec(
            intervals=[
                ScheduleIntervalSpec(
                    every=timedelta(seconds=self._policy.reconciliation_interval_seconds)
                )
            ]
        )
        action = ScheduleActionStartWorkflow(
            ReconciliationWorkflow.run,
            request,
            id=f"reconciliation-run-{self._task_queue}",
            task_queue=self._task_queue,
        )
        schedule_id = reconciliation_schedule_id(self._task_queue)
        try:
            await client.create_schedule(
                schedule_id,
                Schedule(
                    action=action,
                    spec=spec,
                    # A slow run is never doubled by the next tick.
                    policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
                ),
            )
            return
        except ScheduleAlreadyRunningError:
            pass

        async def update(current: ScheduleUpdateInput) -> ScheduleUpdate | None:
            schedule = current.description.schedule
            spec_changed = _intervals(schedule.spec) != _intervals(spec)
            action_changed = not await self._starts_with(client, schedule.action, request)
            if not (spec_changed or action_changed):
                return None  # no update at all: nothing changes, not even its state
            # The schedule as described, state (paused, note) and policy included, with only
            # what changed replaced.
            return ScheduleUpdate(
                schedule=dataclasses.replace(
                    schedule,
                    spec=spec if spec_changed else schedule.spec,
                    action=action if action_changed else schedule.action,
                )
            )

        await client.get_schedule_handle(schedule_id).update(update)

    async def _starts_with(
        self, client: Client, action: ScheduleAction, request: ReconciliationRequest
    ) -> bool:
        """Whether the schedule's action starts this deployment's reconciliation with
        ``request`` (its input is encrypted: compared decoded)."""
        if not (
            isinstance(action, ScheduleActionStartWorkflow)
            and action.workflow == "ReconciliationWorkflow"
            and action.id == f"reconciliation-run-{self._task_queue}"
            and action.task_queue == self._task_queue
            and len(action.args) == 1
        ):
            return False
        try:
            [current] = await client.data_converter.decode(
                list(action.args), [ReconciliationRequest]
            )
        except (DecryptionFailed, TypeError, ValueError, RuntimeError):
            # Written with a key no longer in the ring, or in another shape: replaced.
            return False
        return bool(current == request)

    async def run_reconciliation_now(self) -> None:
        """Start a pass at once (POST /reconciliation/run), under an id of its own: the
        schedule's trigger names its run by the second, so a second trigger, or the
        schedule's tick, in the same second was dropped. A pass beside another is harmless:
        every repair is idempotent."""
        client = await self._connection.client()
        await client.start_workflow(
            ReconciliationWorkflow.run,
            self._policy.reconciliation_request(),
            id=f"reconciliation-run-{self._task_queue}-now-{uuid.uuid4()}",
            task_queue=self._task_queue,
            static_summary="Reconciliation asked for by an operator",
        )

    async def ping(self) -> None:
        client = await self._connection.client()
        await client.service_client.check_health()
