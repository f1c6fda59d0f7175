"""Gateway activities: charge and refund through the PaymentGateway (braintree SDK).

Synchronous (the SDK is), on the worker's thread pool. Error classification happens here,
the decision in the workflow:
- a decline is a result (ChargeResult.approved False), never retried;
- GatewayUnavailable (timeout, connection, 5xx) propagates and Temporal retries it. The retry
  is safe because every write carries the payment's or refund's id as the gateway's
  idempotency key, so the gateway answers a repeat with the original transaction;
- GatewayMisconfigured / GatewayNotFound become non-retryable ApplicationErrors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from payments.contracts import (
    NOT_SETTLED,
    REFUNDED,
    REFUSED,
    VOIDED,
    ActivityNames,
    ChargeRequest,
    ChargeResult,
    GatewayRefundRequest,
    GatewayRefundResult,
)
from payments.errors import ErrorTypes, GatewayMisconfigured, GatewayNotFound
from payments.gateway.types import SETTLED_STATUSES, PaymentGateway, RefundOutcome
from payments.money import Money

T = TypeVar("T")

# Braintree validation codes on refund and void.
CANNOT_REFUND_UNSETTLED = "91506"
CANNOT_VOID = "91504"
VOIDABLE_STATUSES = frozenset({"authorized", "submitted_for_settlement"})


def _call(operation: Callable[[], T]) -> T:
    try:
        return operation()
    except GatewayMisconfigured as exc:
        raise ApplicationError(
            exc.message, type=ErrorTypes.GATEWAY_MISCONFIGURED, non_retryable=True
        ) from exc
    except GatewayNotFound as exc:
        raise ApplicationError(
            exc.message, type=ErrorTypes.GATEWAY_NOT_FOUND, non_retryable=True
        ) from exc


class GatewayActivities:
    def __init__(self, gateway: PaymentGateway) -> None:
        self._gateway = gateway

    @activity.defn(name=ActivityNames.CHARGE)
    def charge(self, request: ChargeRequest) -> ChargeResult:
        outcome = _call(
            lambda: self._gateway.sale(
                request_key=f"sale-{request.payment_id}",
                order_id=request.order_id,
                amount=Money(request.amount_minor, request.currency),
                payment_method_nonce=request.payment_token,
            )
        )
        transaction = outcome.transaction
        return ChargeResult(
            approved=outcome.approved,
            transaction_id=transaction.transaction_id if transaction else None,
            gateway_status=transaction.status if transaction else None,
            processor_response_code=(transaction.processor_response_code if transaction else None)
            or (outcome.decline_code if not outcome.approved else None),
            failure_reason=outcome.failure_reason,
            failure_message=outcome.decline_message,
        )

    @activity.defn(name=ActivityNames.GATEWAY_REFUND)
    def refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        """Give money back: a refund of a settled sale; a void of an unsettled one when the
        whole payment is returned; NOT_SETTLED when a partial refund must wait for
        settlement (the workflow sleeps durably and asks again)."""
        key = f"refund-{request.refund_id}"
        sale = _call(lambda: self._gateway.find(request.transaction_id))
        if request.whole_payment and sale.status == "voided":
            # A retry after our own void went through (the activity died before returning).
            return GatewayRefundResult(VOIDED, gateway_transaction_id=sale.transaction_id)
        if request.whole_payment and sale.status in VOIDABLE_STATUSES:
            voided = _call(
                lambda: self._gateway.void(request_key=key, transaction_id=sale.transaction_id)
            )
            if voided.succeeded:
                return GatewayRefundResult(VOIDED, gateway_transaction_id=sale.transaction_id)
            if voided.error_code != CANNOT_VOID:  # else it settled meanwhile: refund it below
                return _refused(voided)
        elif sale.status not in SETTLED_STATUSES:
            return GatewayRefundResult(NOT_SETTLED)

        amount = Money(request.amount_minor, request.currency)
        refunded = _call(
            lambda: self._gateway.refund(
                request_key=key, transaction_id=sale.transaction_id, amount=amount
            )
        )
        if refunded.succeeded:
            assert refunded.transaction is not None
            return GatewayRefundResult(
                REFUNDED, gateway_transaction_id=refunded.transaction.transaction_id
            )
        if refunded.error_code == CANNOT_REFUND_UNSETTLED:
            return GatewayRefundResult(NOT_SETTLED)
        return _refused(refunded)


def _refused(outcome: RefundOutcome) -> GatewayRefundResult:
    return GatewayRefundResult(
        REFUSED, error_code=outcome.error_code, error_message=outcome.error_message
    )
