"""The worker registers every activity method of its activity classes, under the activity
type names that running workflows and the saved histories (tests/replay) use, whatever its
settings: a workflow's input decides which activities it calls, and any worker may run it."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import temporalio.activity
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from payments.config import PolicySettings, Settings, TemporalSettings
from payments.db.database import Database
from payments.errors import ErrorTypes
from tests.fakes import FakeGateway, RecordingPublisher
from tests.workflows.conftest import RecordingOrderService
from tests.workflows.test_payment_workflow import request
from workers.payment_worker import WORKFLOWS, activity_methods, build_activities
from workflows.payment import PaymentWorkflow

# The method name is the activity type: renaming a method renames the type, which the
# workflows already running (and their histories) still ask for.
ACTIVITY_TYPES = {
    "record_payment_pending",
    "record_payment_outcome",
    "check_fraud",
    "record_fraud",
    "record_review",
    "charge",
    "capture",
    "void_authorization",
    "refund_snapshot",
    "plan_refund",
    "gateway_refund",
    "record_refund_outcome",
    "publish_payment_status",
    "publish_refund_status",
    "check_transaction",
    "find_charge",
    "vault_payment_method",
    "record_vault_failure",
    "discard_abandoned_vault",
    "remove_payment_method",
    "list_open_items",
    "list_open_items_page",
    "reconcile_payment",
    "reconcile_open_payment",
    "reconcile_refund",
    "save_reconciliation_report",
    "purge_expired_idempotency_keys",
    "update_order",
}


def settings(tmp_path: Path, task_queue: str = "payments") -> Settings:
    return Settings(
        policy=PolicySettings(
            dev_token_keys_file=tmp_path / "token-keys", dev_token_key_file=tmp_path / "token.key"
        ),
        temporal=TemporalSettings(task_queue=task_queue),
    )


@pytest.mark.parametrize("orders", [RecordingOrderService(), None], ids=["orders", "no-orders"])
def test_the_worker_registers_every_activity_under_its_type_name(
    time_skipping_env: WorkflowEnvironment,
    db: Database,
    tmp_path: Path,
    orders: RecordingOrderService | None,
) -> None:
    activities = build_activities(
        time_skipping_env.client,
        settings(tmp_path),
        publisher=RecordingPublisher(),
        gateway=FakeGateway(),
        db=db,
        orders=orders,
    )
    names = [temporalio.activity._Definition.must_from_callable(a).name for a in activities]
    assert sorted(names, key=str) == sorted(ACTIVITY_TYPES)


async def test_a_worker_without_an_order_service_fails_the_update_once(
    time_skipping_env: WorkflowEnvironment,
    db: Database,
    executor: ThreadPoolExecutor,
    tmp_path: Path,
) -> None:
    """A payment whose input asks for the order update, run by a worker started without
    ORDER_SERVICE_URL: the update fails once, for good, and the payment keeps its outcome."""
    task_queue = f"tq-{uuid.uuid4()}"
    req = replace(request(), update_order_service=True)
    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(
            time_skipping_env.client,
            settings(tmp_path, task_queue),
            publisher=RecordingPublisher(),
            gateway=FakeGateway(),
            db=db,
            orders=None,
        ),
        activity_executor=executor,
    ):
        handle = await time_skipping_env.client.start_workflow(
            PaymentWorkflow.run, req, id=f"payment-{req.payment_id}", task_queue=task_queue
        )
        # Bounded: an update retried forever would never end.
        result = await asyncio.wait_for(handle.result(), timeout=30)

    assert result.status == "success"
    stored = db.payments.get(req.payment_id)
    assert stored is not None and stored.payment_status == "success"
    history = (await handle.fetch_history()).events
    [failed] = [
        e.activity_task_failed_event_attributes.failure
        for e in history
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    assert failed.application_failure_info.type == ErrorTypes.ORDER_SERVICE_NOT_CONFIGURED
    assert failed.application_failure_info.non_retryable
    assert "ORDER_SERVICE_URL" in failed.message


def test_an_activity_class_without_activities_is_refused_at_start_up() -> None:
    class Forgotten:
        def charge(self) -> None: ...

    with pytest.raises(TypeError, match=r"Forgotten has no @activity\.defn method"):
        activity_methods(Forgotten())
