"""The worker registers every activity method of its activity classes, under the activity
type names that running workflows and the saved histories (tests/replay) use."""

from __future__ import annotations

from pathlib import Path

import pytest
import temporalio.activity
from temporalio.testing import WorkflowEnvironment

from payments.config import PolicySettings, Settings
from payments.db.database import Database
from tests.fakes import FakeGateway, RecordingPublisher
from tests.workflows.conftest import RecordingOrderService
from workers.payment_worker import activity_methods, build_activities

# The method name is the activity type: renaming a method renames the type, which the
# workflows already running (and their histories) still ask for.
ACTIVITY_TYPES = {
    "record_payment_pending",
    "record_payment_outcome",
    "check_fraud",
    "charge",
    "refund_snapshot",
    "plan_refund",
    "gateway_refund",
    "record_refund_outcome",
    "publish_payment_status",
    "publish_refund_status",
    "check_transaction",
    "vault_payment_method",
    "record_vault_failure",
    "remove_payment_method",
    "list_open_items",
    "reconcile_payment",
    "reconcile_refund",
    "save_reconciliation_report",
    "purge_expired_idempotency_keys",
    "update_order",
}


def test_the_worker_registers_every_activity_under_its_type_name(
    time_skipping_env: WorkflowEnvironment, db: Database, tmp_path: Path
) -> None:
    activities = build_activities(
        time_skipping_env.client,
        Settings(
            policy=PolicySettings(
                dev_token_keys_file=tmp_path / "token-keys",
                dev_token_key_file=tmp_path / "token.key",
            )
        ),
        publisher=RecordingPublisher(),
        gateway=FakeGateway(),
        db=db,
        orders=RecordingOrderService(),
    )
    names = [temporalio.activity._Definition.must_from_callable(a).name for a in activities]
    assert sorted(names, key=str) == sorted(ACTIVITY_TYPES)


def test_an_activity_class_without_activities_is_refused_at_start_up() -> None:
    class Forgotten:
        def charge(self) -> None: ...

    with pytest.raises(TypeError, match=r"Forgotten has no @activity\.defn method"):
        activity_methods(Forgotten())
