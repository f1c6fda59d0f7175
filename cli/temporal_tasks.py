"""The operator's tasks that talk to Temporal: register the search attributes, start a
reconciliation pass, replay a run's history against the code about to be deployed."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, WorkflowReplayResult

from payments.config import Settings
from workers.payment_worker import WORKFLOW_RUNNER, WORKFLOWS
from workflows.client import PaymentWorkflows, TemporalConnection
from workflows.connection import connect_temporal, temporal_connect_options
from workflows.namespace_setup import register_search_attributes


async def search_attributes(settings: Settings) -> list[str]:
    """Register the service's search attributes in the configured namespace; those added."""
    client = await connect_temporal(settings)
    return await register_search_attributes(client, settings.temporal.namespace)


async def reconcile(settings: Settings) -> None:
    """Start a reconciliation pass now (as POST /reconciliation/run does)."""
    connection = TemporalConnection.for_settings(settings)
    await PaymentWorkflows(
        connection, settings.temporal.task_queue, settings.policy
    ).run_reconciliation_now()


async def fetch_history(
    settings: Settings, workflow_id: str, run_id: str | None
) -> WorkflowHistory:
    client = await connect_temporal(settings)
    return await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()


def read_history(path: Path) -> WorkflowHistory:
    """A history exported as JSON (the Temporal UI's download, ``temporal workflow show
    --output json``, or a file of tests/replay/histories)."""
    return WorkflowHistory.from_json(path.stem, path.read_text())


async def replay(settings: Settings, history: WorkflowHistory) -> WorkflowReplayResult:
    """Replay ``history`` on this code's workflows, with the service's payload codec (a
    history fetched from the server is encrypted; a plaintext one decodes unchanged)."""
    replayer = Replayer(
        workflows=WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
        data_converter=temporal_connect_options(settings)["data_converter"],
    )
    return await replayer.replay_workflow(history, raise_on_replay_failure=False)
