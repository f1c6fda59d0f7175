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

import uuid
from collections.abc import Callable
from typing import TypeVar

import structlog
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
    RemovePaymentMethodRequest,
    TransactionCheck,
    VaultRequest,
    VaultResult,
)
from payments.crypto import TokenCipher
from payments.db.models import StoredPaymentMethod
from payments.db.repository import PaymentRepository
from payments.errors import ErrorTypes, GatewayMisconfigured, GatewayNotFound
from payments.gateway.declines import decline_type
from payments.gateway.types import (
    APPROVED_STATUSES,
    SETTLED_STATUSES,
    GatewayTransaction,
    PaymentGateway,
    RefundOutcome,
    SaleOutcome,
)
from payments.money import Money

log = structlog.get_logger(__name__)

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
    def __init__(
        self, gateway: PaymentGateway, repository: PaymentRepository, cipher: TokenCipher
    ) -> None:
        self._gateway = gateway
        self._repository = repository
        self._cipher = cipher

    @activity.defn(name=ActivityNames.CHARGE)
    def charge(self, request: ChargeRequest) -> ChargeResult:
        """One sale per payment. The request key makes the gateway answer a repeat with the
        original transaction; on a retry (the first attempt's outcome is unknown) the
        gateway's sales for the order are looked at first, so that a sale that did happen
        is taken, not made again."""
        amount = Money(request.amount_minor, request.currency)
        if activity.info().attempt > 1:
            earlier = self._earlier_sale(request.order_id, amount)
            if earlier is not None:
                log.info(
                    "sale found at the gateway after an unknown outcome",
                    payment_id=request.payment_id,
                    transaction_id=earlier.transaction_id,
                )
                return _charge_result(SaleOutcome(approved=True, transaction=earlier))
        token = self._vaulted_token(request) if request.payment_method_id else None
        # One key per attempt: a retried soft decline is a new sale, while a retried activity
        # (an unknown outcome) repeats its attempt's key and gets the same sale back.
        key = f"sale-{request.payment_id}"
        if request.attempt > 1:
            key += f"-{request.attempt}"
        outcome = _call(
            lambda: self._gateway.sale(
                request_key=key,
                order_id=request.order_id,
                amount=amount,
                payment_method_nonce=request.payment_token if token is None else None,
                payment_method_token=token,
            )
        )
        return _charge_result(outcome)

    def _earlier_sale(self, order_id: str, amount: Money) -> GatewayTransaction | None:
        for sale in _call(lambda: self._gateway.find_sales_by_order_id(order_id)):
            # A failed earlier payment for the order left a declined sale: not ours to take.
            if sale.status in APPROVED_STATUSES and sale.amount == amount:
                return sale
        return None

    def _vaulted_token(self, request: ChargeRequest) -> str:
        assert request.payment_method_id is not None
        method = self._repository.get_payment_method(request.payment_method_id)
        if method is None or method.user_id != request.user_id:
            raise ApplicationError(
                f"payment method {request.payment_method_id} not found",
                type=ErrorTypes.PAYMENT_NOT_FOUND,
                non_retryable=True,
            )
        return self._cipher.decrypt(method.token_ciphertext)

    @activity.defn(name=ActivityNames.CHECK_TRANSACTION)
    def check_transaction(self, transaction_id: str) -> TransactionCheck:
        found = _call(lambda: self._gateway.find(transaction_id))
        return TransactionCheck(
            transaction_id=found.transaction_id,
            status=found.status,
            processor_response_code=found.processor_response_code,
        )

    @activity.defn(name=ActivityNames.VAULT_PAYMENT_METHOD)
    def vault_payment_method(self, request: VaultRequest) -> VaultResult:
        """Store the nonce's payment method at the gateway and its token, encrypted, here.
        A retry after the row was written returns it without vaulting again."""
        if self._repository.get_payment_method(request.payment_method_id) is not None:
            return VaultResult(succeeded=True, payment_method_id=request.payment_method_id)
        outcome = _call(
            lambda: self._gateway.vault(
                customer_id=customer_id_for(request.user_id),
                payment_method_nonce=request.payment_token,
            )
        )
        if not outcome.succeeded or outcome.method is None:
            return VaultResult(
                succeeded=False,
                payment_method_id=request.payment_method_id,
                error_code=outcome.error_code,
                error_message=outcome.error_message,
            )
        vaulted = outcome.method
        instrument = vaulted.instrument
        self._repository.add_payment_method(
            StoredPaymentMethod(
                payment_method_id=request.payment_method_id,
                user_id=request.user_id,
                gateway_customer_id=vaulted.customer_id,
                token_ciphertext=self._cipher.encrypt(vaulted.token),
                instrument_type=instrument.instrument_type,
                brand=instrument.brand,
                last4=instrument.last4,
                expiration=instrument.expiration,
                wallet_type=instrument.wallet,
                display=instrument.display,
            )
        )
        return VaultResult(succeeded=True, payment_method_id=request.payment_method_id)

    @activity.defn(name=ActivityNames.REMOVE_PAYMENT_METHOD)
    def remove_payment_method(self, request: RemovePaymentMethodRequest) -> str:
        method = self._repository.get_payment_method(request.payment_method_id)
        if method is None:
            return "unknown"
        token = self._cipher.decrypt(method.token_ciphertext)
        _call(lambda: self._gateway.delete_payment_method(token))
        return "deleted"

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


def customer_id_for(user_id: str) -> str:
    """The gateway customer of a user: stable, and free of the user id's characters."""
    return "c" + uuid.uuid5(uuid.NAMESPACE_URL, f"payments:user:{user_id}").hex


def _charge_result(outcome: SaleOutcome) -> ChargeResult:
    transaction = outcome.transaction
    code = (transaction.processor_response_code if transaction else None) or (
        outcome.decline_code if not outcome.approved else None
    )
    return ChargeResult(
        approved=outcome.approved,
        transaction_id=transaction.transaction_id if transaction else None,
        gateway_status=transaction.status if transaction else None,
        processor_response_code=code,
        failure_reason=outcome.failure_reason,
        failure_message=outcome.decline_message,
        decline_type=(
            decline_type(code)
            if not outcome.approved and outcome.failure_reason == "processor_declined"
            else None
        ),
        instrument=transaction.instrument if transaction else None,
    )


def _refused(outcome: RefundOutcome) -> GatewayRefundResult:
    return GatewayRefundResult(
        REFUSED, error_code=outcome.error_code, error_message=outcome.error_message
    )
