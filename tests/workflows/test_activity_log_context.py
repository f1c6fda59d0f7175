"""The worker binds where an activity runs (workflow, run, activity, attempt, payment) to every
log line the activity writes, in its executor thread too, on its retries too."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import structlog
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from workers.log_context import ActivityLogContext

BOUND = ("workflow_id", "run_id", "activity", "attempt", "payment_id", "refund_id")


@activity.defn
def what_a_log_line_would_carry(fail_first: bool) -> dict[str, str | int]:
    if fail_first and activity.info().attempt == 1:
        raise RuntimeError("the first attempt fails")
    bound = structlog.contextvars.get_contextvars()
    return {key: bound[key] for key in BOUND if key in bound}  # str and int values


@workflow.defn
class LoggingWorkflow:
    @workflow.run
    async def run(self) -> list[dict[str, str | int]]:
        timeout = timedelta(seconds=10)
        retry = RetryPolicy(initial_interval=timedelta(milliseconds=10))
        regular = await workflow.execute_activity(
            what_a_log_line_would_carry, True, start_to_close_timeout=timeout, retry_policy=retry
        )
        local = await workflow.execute_local_activity(
            what_a_log_line_would_carry, False, start_to_close_timeout=timeout, retry_policy=retry
        )
        return [regular, local]


async def test_activity_lines_name_their_run_activity_attempt_and_payment(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    client = time_skipping_env.client
    task_queue = f"log-context-{uuid.uuid4()}"
    payment_id = str(uuid.uuid4())
    with ThreadPoolExecutor(2) as executor:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[LoggingWorkflow],
            activities=[what_a_log_line_would_carry],
            activity_executor=executor,
            interceptors=[ActivityLogContext()],
            # A test's workflow: what it exercises is the worker's activity side.
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            handle = await client.start_workflow(
                LoggingWorkflow.run, id=f"payment-{payment_id}", task_queue=task_queue
            )
            regular, local = await handle.result()
    expected = {
        "workflow_id": f"payment-{payment_id}",
        "run_id": handle.result_run_id,
        "activity": "what_a_log_line_would_carry",
        "payment_id": payment_id,
    }
    assert regular == {**expected, "attempt": 2}  # the retry's own attempt
    assert local == {**expected, "attempt": 1}
    # Nothing stays bound in the worker's threads after the activity.
    assert structlog.contextvars.get_contextvars().get("workflow_id") is None
