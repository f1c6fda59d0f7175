"""Typed calls of every activity, by name, with its options from workflows/options.py.

Workflows call these instead of ``workflow.execute_activity`` so that their bodies read as
the business steps, and so that they never import an activity module (and with it the
database, gateway or Kafka libraries) into the workflow sandbox.
"""

from __future__ import annotations

from typing import TypeVar

from temporalio import workflow

from payments.contracts import (
    ActivityNames,
    ChargeRequest,
    ChargeResult,
    Finding,
    FraudCheckRequest,
    FraudDecision,
    GatewayRefundRequest,
    GatewayRefundResult,
    OpenItems,
    OrderUpdate,
    PaymentOutcome,
    PaymentReconciliation,
    PaymentRequest,
    PaymentSnapshot,
    PurgeRequest,
    ReconciliationReportData,
    ReconciliationRequest,
    RefundOutcome,
    RefundPlan,
    RefundRequest,
    RefundSnapshot,
    RemovePaymentMethodRequest,
    TransactionCheck,
    VaultRequest,
    VaultResult,
)
from workflows.options import EVENTS, FRAUD, GATEWAY, LEDGER, ORDERS, VAULT, ActivityOptions

R = TypeVar("R")


async def _run(name: str, arg: object, result_type: type[R], options: ActivityOptions) -> R:
    result = await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=options.start_to_close_timeout,
        schedule_to_close_timeout=options.schedule_to_close_timeout,
        retry_policy=options.retry_policy,
    )
    assert isinstance(result, result_type)
    return result


async def record_payment_pending(request: PaymentRequest) -> PaymentSnapshot:
    return await _run(ActivityNames.RECORD_PAYMENT_PENDING, request, PaymentSnapshot, LEDGER)


async def check_fraud(request: FraudCheckRequest) -> FraudDecision:
    return await _run(ActivityNames.CHECK_FRAUD, request, FraudDecision, FRAUD)


async def charge(request: ChargeRequest) -> ChargeResult:
    return await _run(ActivityNames.CHARGE, request, ChargeResult, GATEWAY)


async def record_payment_outcome(outcome: PaymentOutcome) -> PaymentSnapshot:
    return await _run(ActivityNames.RECORD_PAYMENT_OUTCOME, outcome, PaymentSnapshot, LEDGER)


async def publish_payment_status(snapshot: PaymentSnapshot) -> None:
    await _run(ActivityNames.PUBLISH_PAYMENT_STATUS, snapshot, str, EVENTS)


async def refund_snapshot(request: RefundRequest) -> RefundSnapshot:
    return await _run(ActivityNames.REFUND_SNAPSHOT, request, RefundSnapshot, LEDGER)


async def plan_refund(request: RefundRequest) -> RefundPlan:
    return await _run(ActivityNames.PLAN_REFUND, request, RefundPlan, LEDGER)


async def gateway_refund(request: GatewayRefundRequest) -> GatewayRefundResult:
    return await _run(ActivityNames.GATEWAY_REFUND, request, GatewayRefundResult, GATEWAY)


async def record_refund_outcome(outcome: RefundOutcome) -> RefundSnapshot:
    return await _run(ActivityNames.RECORD_REFUND_OUTCOME, outcome, RefundSnapshot, LEDGER)


async def publish_refund_status(snapshot: RefundSnapshot) -> None:
    await _run(ActivityNames.PUBLISH_REFUND_STATUS, snapshot, str, EVENTS)


async def check_transaction(transaction_id: str) -> TransactionCheck:
    return await _run(ActivityNames.CHECK_TRANSACTION, transaction_id, TransactionCheck, GATEWAY)


async def vault_payment_method(request: VaultRequest) -> VaultResult:
    return await _run(ActivityNames.VAULT_PAYMENT_METHOD, request, VaultResult, VAULT)


async def record_vault_failure(result: VaultResult) -> None:
    await _run(ActivityNames.RECORD_VAULT_FAILURE, result, str, LEDGER)


async def remove_payment_method(request: RemovePaymentMethodRequest) -> None:
    await _run(ActivityNames.REMOVE_PAYMENT_METHOD, request, str, GATEWAY)


async def list_open_items(request: ReconciliationRequest) -> OpenItems:
    return await _run(ActivityNames.LIST_OPEN_ITEMS, request, OpenItems, LEDGER)


async def reconcile_payment(payment_id: str) -> PaymentReconciliation:
    return await _run(ActivityNames.RECONCILE_PAYMENT, payment_id, PaymentReconciliation, GATEWAY)


async def reconcile_refund(refund_id: str) -> Finding:
    return await _run(ActivityNames.RECONCILE_REFUND, refund_id, Finding, GATEWAY)


async def save_reconciliation_report(report: ReconciliationReportData) -> None:
    await _run(ActivityNames.SAVE_RECONCILIATION_REPORT, report, str, LEDGER)


async def purge_expired_idempotency_keys(request: PurgeRequest) -> int:
    return await _run(ActivityNames.PURGE_EXPIRED_IDEMPOTENCY_KEYS, request, int, LEDGER)


async def update_order(update: OrderUpdate) -> None:
    await _run(ActivityNames.UPDATE_ORDER, update, str, ORDERS)
