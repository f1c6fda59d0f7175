"""Reconciliation repairs what no workflow will finish; vaulted methods are charged by
token, which is stored only encrypted."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from temporalio.client import WorkflowHandle

from payments.contracts import (
    PaymentRequest,
    PaymentSnapshot,
    ReconciliationRequest,
    RefundSnapshot,
)
from payments.db.models import Payment, Refund
from payments.db.repositories.idempotency import IdempotencyClaim
from payments.events import topics
from payments.gateway.types import GatewayTransaction
from payments.money import Money
from tests.support.rows import payment_row, refund_row
from tests.workflows.conftest import Harness, run_removal, run_vault, wait_for_step
from tests.workflows.test_payment_workflow import POLICY, request, run
from workflows.payment import PaymentWorkflow
from workflows.reconciliation import ReconciliationWorkflow


def orphan_payment_row() -> Payment:
    return payment_row(amount=2500)


def orphan_payment(harness: Harness) -> Payment:
    """A pending payment whose workflow never ran (the process died between the two)."""
    payment, _ = harness.db.payments.insert(orphan_payment_row())
    return payment


@dataclass(frozen=True)
class OpenItems:
    """Every kind of open item reconciliation meets."""

    charged: Payment  # an orphan the gateway charged (its answer was lost)
    never_charged: Payment  # an orphan the gateway never saw
    orphan_refund: Refund  # an initiated refund without its workflow
    waiting: PaymentRequest  # a payment whose workflow still waits for settlement (daily)
    running: WorkflowHandle[PaymentWorkflow, PaymentSnapshot]


async def open_items(harness: Harness) -> OpenItems:
    charged = orphan_payment(harness)
    harness.gateway.lost_sales[charged.order_id] = GatewayTransaction(
        transaction_id=f"lost-{uuid.uuid4().hex[:8]}",
        type="sale",
        status="settled",
        amount=Money(charged.amount, charged.currency),
        order_id=charged.order_id,
        processor_response_code="1000",
        processor_response_text="Approved",
    )
    never_charged = orphan_payment(harness)

    paid = await run(harness, request())
    assert paid.transaction_id is not None
    harness.gateway.settle(paid.transaction_id)
    paid_row = harness.db.payments.get(paid.payment_id)
    assert paid_row is not None
    orphan_refund, _ = harness.db.refunds.reserve(refund_row(paid_row, 1000), whole_remainder=False)

    waiting = replace(
        request(),
        payment_token="fake-sepa-direct-debit-nonce",
        policy=replace(POLICY, pending_check_schedule_seconds=[86400.0]),
    )
    harness.gateway.sale_status = "settlement_pending"
    running = await harness.client.start_workflow(
        PaymentWorkflow.run,
        waiting,
        id=f"payment-{waiting.payment_id}",
        task_queue=harness.task_queue,
    )
    await wait_for_step(running, "waiting_for_settlement")
    return OpenItems(charged, never_charged, orphan_refund, waiting, running)


async def test_reconciliation_repairs_what_no_workflow_will_finish(harness: Harness) -> None:
    items = await open_items(harness)
    charged, never_charged, orphan_refund = items.charged, items.never_charged, items.orphan_refund
    waiting, running = items.waiting, items.running

    # An idempotency key that has expired: reconciliation's housekeeping deletes it.
    expired_key = IdempotencyClaim("default", f"old-{uuid.uuid4()}", "f", ttl_seconds=0.001)
    harness.db.payments.insert(orphan_payment_row(), idempotency=expired_key)

    # The broker is down when reconciliation first announces a repair: the announcement is a
    # step of its own, retried, so it is not lost with the repair already recorded.
    harness.publisher.failures = 1
    report = await harness.client.execute_workflow(
        ReconciliationWorkflow.run,
        ReconciliationRequest(min_age_seconds=0),
        id=f"reconciliation-{uuid.uuid4()}",
        task_queue=harness.task_queue,
    )
    actions = {f.id: f.action for f in report.findings}
    assert actions[charged.payment_id] == "recorded_success"
    assert actions[never_charged.payment_id] == "recorded_failure"
    assert actions[orphan_refund.refund_id] == "restarted"
    # Its workflow checks the gateway on its own schedule: left alone.
    assert actions[waiting.payment_id] == "none"

    repaired = harness.db.payments.get(charged.payment_id)
    assert repaired is not None
    assert (repaired.payment_status, repaired.transaction_id) == (
        "success",
        harness.gateway.lost_sales[charged.order_id].transaction_id,
    )
    abandoned = harness.db.payments.get(never_charged.payment_id)
    assert abandoned is not None
    assert (abandoned.payment_status, abandoned.failure_reason) == ("failure", "abandoned")
    # Repairs are announced like any other status change.
    announced = harness.publisher.of(topics.PAYMENT_STATUS, charged.payment_id)
    assert [e["status"] for e in announced] == ["success"]
    failed = harness.publisher.of(topics.PAYMENT_STATUS, never_charged.payment_id)
    assert [(e["status"], e["failure_reason"]) for e in failed] == [("failure", "abandoned")]
    latest = harness.db.reconciliation.latest_report()
    assert latest is not None and latest.report_id == report.report_id
    # Nothing expired is left to purge: the reconciliation did it.
    assert harness.db.idempotency_keys.purge_expired() == 0

    # The restarted refund runs to its end.
    restarted = harness.client.get_workflow_handle(
        f"refund-{orphan_refund.refund_id}", result_type=RefundSnapshot
    )
    assert (await restarted.result()).status == "processed"
    await running.terminate("test over")


async def test_vaulted_method_is_charged_by_token(harness: Harness) -> None:
    method_id = str(uuid.uuid4())
    vaulted = await run_vault(harness, method_id, "fake-valid-visa-nonce")
    assert vaulted.succeeded
    stored = harness.db.payment_methods.get(method_id)
    assert stored is not None and (stored.brand, stored.last4) == ("Visa", "1881")
    [token] = list(harness.gateway.vaulted)
    assert stored.token_ciphertext is not None and token not in stored.token_ciphertext

    req = replace(request(), payment_token=None, payment_method_id=method_id)
    result = await run(harness, req)
    assert result.status == "success"

    await run_removal(harness, method_id)
    assert harness.gateway.vaulted == {}


async def test_vault_refusal_is_a_result(harness: Harness) -> None:
    method_id = str(uuid.uuid4())
    refused = await run_vault(harness, method_id, "fake-consumed-nonce")
    assert (refused.succeeded, refused.error_code) == (False, "91565")
    assert harness.db.payment_methods.get(method_id) is None
