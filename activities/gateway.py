"""Gateway activities: charge and refund through the PaymentGateway (braintree SDK).

Synchronous (the SDK is), on the worker's thread pool. Error classification happens here,
the decision in the workflow:
- a decline is a result (ChargeResult.approved False), never retried;
- GatewayUnavailable (timeout, connection, 5xx) propagates and Temporal retries it. The retry
  is safe because every write carries the payment's or refund's id as the gateway's
  idempotency key, so the gateway answers a repeat with the original transaction;
- GatewayRequestRejected (the gateway says the request itself is malformed: a 400...) is
  permanent: a failed charge, a refused vault or refund (reason/code "invalid_request"), and a
  non-retryable ApplicationError for lookups and deletions;
- GatewayMisconfigured / GatewayNotFound become non-retryable ApplicationErrors, and so does
  GatewayAdapterBug (a programming error in the adapter, which a retry would only repeat);
- a saved payment method whose stored token does not decrypt (TokenDecryptionFailed) is
  permanent too: a failed charge ("payment_method_unreadable", no gateway call), a
  non-retryable ApplicationError on removal;
- a saved payment method deleted since the payment started is a failed charge
  ("payment_method_removed", no gateway call), which ends a payment's soft-decline retries.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import non_retryable
from activities.metrics import count_decline, gateway_call_timed
from payments.contracts import (
    ChargeRequest,
    ChargeResult,
    FraudCheckRequest,
    GatewayRefundRequest,
    GatewayRefundResult,
    HeldPayment,
    RemovePaymentMethodRequest,
    TransactionCheck,
    VaultRequest,
    VaultResult,
)
from payments.crypto import TokenCipher, TokenDecryptionFailed
from payments.errors import (
    ErrorTypes,
    GatewayAdapterBug,
    GatewayMisconfigured,
    GatewayNotFound,
    GatewayRequestRejected,
)
from payments.gateway.declines import decline_type
from payments.gateway.types import (
    GatewayTransaction,
    PaymentGateway,
    PaymentMethodNotFound,
    PaymentMethodProfile,
    ReversalOutcome,
    SaleOutcome,
    VaultedPaymentMethod,
    VaultOutcome,
)
from payments.money import Money
from payments.vocabulary import (
    APPROVED_STATUSES,
    SETTLED_STATUSES,
    VOIDABLE_STATUSES,
    GatewayRefundOutcome,
    VaultStatus,
)

if TYPE_CHECKING:
    from payments.db.models import StoredPaymentMethod
    from payments.db.repositories.payment_methods import PaymentMethodRepository

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Braintree validation codes on refund and void.
CANNOT_REFUND_UNSETTLED = "91506"
CANNOT_VOID = "91504"
# Failure reason (charge) and error code (vault, refund) of a request the gateway refused as
# malformed; failure reasons of a charge with a saved method whose token does not decrypt, or
# that its owner deleted meanwhile.
INVALID_REQUEST = "invalid_request"
PAYMENT_METHOD_UNREADABLE = "payment_method_unreadable"
PAYMENT_METHOD_REMOVED = "payment_method_removed"


def _call(name: str, operation: Callable[[], T], *, rejection_is_a_result: bool = False) -> T:
    """Run the gateway call ``name``, turning the errors that no retry can heal into
    non-retryable ApplicationErrors. With ``rejection_is_a_result`` a GatewayRequestRejected
    propagates unchanged, for the caller to answer with a refusal; GatewayUnavailable always
    propagates (Temporal retries it). Its latency goes to the worker's metrics."""
    try:
        with gateway_call_timed(name):
            return operation()
    except GatewayMisconfigured as exc:
        raise non_retryable(exc.message, ErrorTypes.GATEWAY_MISCONFIGURED) from exc
    except GatewayNotFound as exc:
        raise non_retryable(exc.message, ErrorTypes.GATEWAY_NOT_FOUND) from exc
    except GatewayAdapterBug as exc:
        # Logged with its traceback by the adapter; the attempt fails for good.
        raise non_retryable(exc.message, ErrorTypes.GATEWAY_ADAPTER_BUG) from exc
    except GatewayRequestRejected as exc:
        if rejection_is_a_result:
            raise
        raise non_retryable(exc.message, ErrorTypes.GATEWAY_REQUEST_REJECTED) from exc


class GatewayActivities:
    def __init__(
        self,
        gateway: PaymentGateway,
        payment_methods: PaymentMethodRepository,
        cipher: TokenCipher,
        *,
        default_merchant_id: str,
    ) -> None:
        self._gateway = gateway
        self._payment_methods = payment_methods
        self._cipher = cipher
        self._default_merchant_id = default_merchant_id

    @activity.defn
    def charge(self, request: ChargeRequest) -> ChargeResult:
        """One sale per payment. The request key makes the gateway answer a repeat with the
        original transaction; on a retry (the first attempt's outcome is unknown) the
        gateway's sales for the order are looked at first, so that a sale that did happen
        is taken, not made again.

        Not retried, and answered as a failed charge: a request the gateway rejects as
        malformed (failure_reason "invalid_request"), a saved payment method whose token
        no configured key decrypts ("payment_method_unreadable", no gateway call) and one its
        owner deleted since the payment started ("payment_method_removed", no gateway call:
        the retries of a soft decline end there)."""
        amount = Money(request.amount_minor, request.currency)
        gateway_order_id = request.gateway_order_id or request.order_id
        if activity.info().attempt > 1:
            # A rejected search stays a non-retryable error, not a failed charge: the first
            # attempt's sale may have happened, and reconciliation must look at it.
            earlier = self._earlier_sale(gateway_order_id, amount)
            if earlier is not None:
                log.info(
                    "sale found at the gateway after an unknown outcome",
                    payment_id=request.payment_id,
                    transaction_id=earlier.transaction_id,
                )
                return _charge_result(SaleOutcome(approved=True, transaction=earlier))
        token: str | None = None
        if request.payment_method_id:
            method = self._payment_methods.get(request.payment_method_id)
            if method is not None and method.deleted_at is not None:
                # Its owner deleted it (DELETE /payment-methods/{id}) after the payment started,
                # typically while a soft decline waited to be retried: never charged again.
                log.info(
                    "saved_method_removed_before_charge",
                    payment_id=request.payment_id,
                    payment_method_id=request.payment_method_id,
                    attempt=request.attempt,
                )
                return _failed_charge(
                    PAYMENT_METHOD_REMOVED,
                    "the saved payment method was deleted before this charge",
                )
            try:
                token = self._vaulted_token(request, method)
            except TokenDecryptionFailed as exc:
                # Loud: a key left the ring too early, or a row was altered. The customer
                # can save the method again; retrying cannot help.
                log.error(
                    "vaulted_token_unreadable",
                    payment_id=request.payment_id,
                    payment_method_id=request.payment_method_id,
                    reason=exc.message,
                )
                return _failed_charge(
                    PAYMENT_METHOD_UNREADABLE,
                    "the saved payment method can no longer be used; save it again",
                )
        # One key per attempt: a retried soft decline is a new sale, while a retried activity
        # (an unknown outcome) repeats its attempt's key and gets the same sale back.
        key = f"sale-{request.payment_id}"
        if request.attempt > 1:
            key += f"-{request.attempt}"
        try:
            outcome = _call(
                "sale",
                lambda: self._gateway.sale(
                    request_key=key,
                    order_id=gateway_order_id,
                    amount=amount,
                    payment_method_nonce=request.payment_token if token is None else None,
                    payment_method_token=token,
                    submit_for_settlement=not request.authorize_only,
                ),
                rejection_is_a_result=True,
            )
        except GatewayRequestRejected as exc:
            # Nothing was charged, and the same request would be refused again.
            log.warning(
                "sale_rejected_as_malformed", payment_id=request.payment_id, http_status=exc.status
            )
            return _failed_charge(INVALID_REQUEST, exc.message)
        if not outcome.approved:
            count_decline(outcome.decline_code or outcome.failure_reason or "unknown")
        return _charge_result(outcome)

    def _earlier_sale(self, order_id: str, amount: Money) -> GatewayTransaction | None:
        for sale in _call(
            "find_sales_by_order_id", lambda: self._gateway.find_sales_by_order_id(order_id)
        ):
            # A failed earlier payment for the order left a declined sale: not ours to take.
            if sale.status in APPROVED_STATUSES and sale.amount == amount:
                return sale
        return None

    def _vaulted_token(self, request: ChargeRequest, method: StoredPaymentMethod | None) -> str:
        """The gateway token of the request's saved payment method (``method``, as read).
        Raises a non-retryable ApplicationError if the user has no such usable method,
        TokenDecryptionFailed if its token does not decrypt for that method's id."""
        if (
            method is None
            or method.user_id != request.user_id
            or method.status != VaultStatus.ACTIVE
            or method.token_ciphertext is None
        ):
            raise non_retryable(
                f"payment method {request.payment_method_id} not found",
                ErrorTypes.PAYMENT_NOT_FOUND,
            )
        return self._cipher.decrypt(
            method.token_ciphertext, payment_method_id=method.payment_method_id
        )

    @activity.defn
    def find_charge(self, request: ChargeRequest) -> ChargeResult | None:
        """The last word on a sale whose attempts ran out of time (the nonce has expired):
        the sale the gateway made for it, or None when there is none."""
        sale = self._earlier_sale(
            request.gateway_order_id or request.order_id,
            Money(request.amount_minor, request.currency),
        )
        if sale is None:
            log.warning(
                "no sale at the gateway after the charge ran out of time",
                payment_id=request.payment_id,
                attempt=request.attempt,
            )
            return None
        log.info(
            "sale found at the gateway after the charge ran out of time",
            payment_id=request.payment_id,
            transaction_id=sale.transaction_id,
        )
        return _charge_result(SaleOutcome(approved=True, transaction=sale))

    def describe_payment_method(self, request: FraudCheckRequest) -> PaymentMethodProfile | None:
        """What the fraud rules know of the payment method before charging it (BIN, issuing
        country, fingerprint): a look-up at the gateway that charges nothing and leaves a
        nonce usable. None when the gateway does not know the method, or the saved method
        cannot be used (the charge refuses it then, with its own reason)."""
        token: str | None = None
        if request.payment_method_id:
            method = self._payment_methods.get(request.payment_method_id)
            if method is None or method.deleted_at is not None:
                return None
            try:
                token = self._vaulted_token(
                    ChargeRequest(
                        payment_id=request.payment_id,
                        order_id=request.order_id,
                        user_id=request.user_id,
                        amount_minor=request.amount_minor,
                        currency=request.currency,
                        payment_token=None,
                        payment_method_id=request.payment_method_id,
                    ),
                    method,
                )
            except (ApplicationError, TokenDecryptionFailed):
                return None
        elif not request.payment_token:
            return None
        try:
            with gateway_call_timed("describe_payment_method"):
                return self._gateway.describe_payment_method(
                    payment_method_nonce=request.payment_token if token is None else None,
                    payment_method_token=token,
                )
        except (PaymentMethodNotFound, GatewayNotFound, GatewayRequestRejected):
            return None

    @activity.defn
    def capture(self, held: HeldPayment) -> ChargeResult:
        """Submit a held authorization for settlement (an operator approved the payment).
        Idempotent: the same request key gets the same answer."""
        outcome = _call(
            "submit_for_settlement",
            lambda: self._gateway.submit_for_settlement(
                request_key=f"capture-{held.payment_id}", transaction_id=held.transaction_id
            ),
        )
        return _charge_result(outcome)

    @activity.defn
    def void_authorization(self, held: HeldPayment) -> TransactionCheck:
        """Void a held authorization (declined in review, or nobody decided in time): the
        hold on the customer's funds is released and nothing is charged. Answers the sale's
        status after; an authorization that expired meanwhile is as good as voided."""
        sale = _call("find", lambda: self._gateway.find(held.transaction_id))
        if sale.status in VOIDABLE_STATUSES:
            voided = _call(
                "void",
                lambda: self._gateway.void(
                    request_key=f"void-{held.payment_id}", transaction_id=held.transaction_id
                ),
            )
            if voided.succeeded:
                return TransactionCheck(held.transaction_id, "voided")
            sale = _call("find", lambda: self._gateway.find(held.transaction_id))
        if sale.status in APPROVED_STATUSES:
            # Never expected (only this workflow captures it): an operator must look.
            raise non_retryable(
                f"the held sale {held.transaction_id} is {sale.status} and could not be voided",
                ErrorTypes.GATEWAY_REQUEST_REJECTED,
            )
        return TransactionCheck(held.transaction_id, sale.status, sale.processor_response_code)

    @activity.defn
    def check_transaction(self, transaction_id: str) -> TransactionCheck:
        found = _call("find", lambda: self._gateway.find(transaction_id))
        return TransactionCheck(
            transaction_id=found.transaction_id,
            status=found.status,
            processor_response_code=found.processor_response_code,
        )

    @activity.defn
    def vault_payment_method(self, request: VaultRequest) -> VaultResult:
        """Store the nonce's payment method at the gateway, then record the answer on the
        payment method's row (written pending by the API): active, with the token encrypted
        and bound to the row's id, or failed with the gateway's reason. A refusal is a result,
        never retried; a request the gateway rejects as malformed is one, with error_code
        "invalid_request". A retry after the row was decided returns that decision without
        vaulting again. A vault without a row (started before the API wrote pending rows)
        gets one when it succeeds."""
        method_id = request.payment_method_id
        stored = self._payment_methods.get(method_id)
        if stored is not None and stored.status == VaultStatus.ACTIVE:
            return VaultResult(succeeded=True, payment_method_id=method_id)
        if stored is not None and stored.status == VaultStatus.FAILED:
            return VaultResult(
                succeeded=False,
                payment_method_id=method_id,
                error_code=stored.failure_code,
                error_message=stored.failure_message,
            )
        customer_id = customer_id_for(request.merchant_id, request.user_id)
        try:
            earlier = self._earlier_vault(request, customer_id)
            outcome = (
                VaultOutcome(succeeded=True, method=earlier)
                if earlier is not None
                else _call(
                    "vault",
                    lambda: self._gateway.vault(
                        customer_id=customer_id,
                        payment_method_nonce=request.payment_token,
                        token=request.gateway_token,
                    ),
                    rejection_is_a_result=True,
                )
            )
        except GatewayRequestRejected as exc:
            log.warning(
                "vault_rejected_as_malformed", payment_method_id=method_id, http_status=exc.status
            )
            outcome = VaultOutcome(
                succeeded=False, error_code=INVALID_REQUEST, error_message=exc.message
            )
        if not outcome.succeeded or outcome.method is None:
            self._payment_methods.fail(
                method_id, code=outcome.error_code, message=outcome.error_message
            )
            return VaultResult(
                succeeded=False,
                payment_method_id=method_id,
                error_code=outcome.error_code,
                error_message=outcome.error_message,
            )
        vaulted = outcome.method
        if stored is None:
            self._payment_methods.add_pending(
                method_id,
                merchant_id=request.merchant_id or self._default_merchant_id,
                user_id=request.user_id,
            )
        recorded = self._payment_methods.activate(
            method_id,
            gateway_customer_id=vaulted.customer_id,
            token_ciphertext=self._cipher.encrypt(vaulted.token, payment_method_id=method_id),
            instrument=vaulted.instrument,
        )
        if recorded.status != VaultStatus.ACTIVE:
            # Vaulted too late: the workflow gave up meanwhile and the customer was told the
            # method failed (this attempt's result goes nowhere). Nothing will ever use it.
            log.warning("vaulted_after_giving_up", payment_method_id=method_id)
            _call(
                "delete_payment_method", lambda: self._gateway.delete_payment_method(vaulted.token)
            )
            return VaultResult(
                succeeded=False,
                payment_method_id=method_id,
                error_code=recorded.failure_code,
                error_message=recorded.failure_message,
            )
        return VaultResult(succeeded=True, payment_method_id=method_id)

    def _earlier_vault(
        self, request: VaultRequest, customer_id: str
    ) -> VaultedPaymentMethod | None:
        """On a retry, what an earlier attempt vaulted under the request's token (its answer
        was lost): taken instead of vaulting the single-use nonce again, which the gateway
        would refuse as consumed and leave the earlier method orphaned."""
        token = request.gateway_token
        if token is None or activity.info().attempt == 1:
            return None
        found = _call("find_payment_method", lambda: self._gateway.find_payment_method(token))
        if found is None or found.customer_id != customer_id:
            return None
        log.info(
            "vault found at the gateway after an unknown outcome",
            payment_method_id=request.payment_method_id,
        )
        return found

    @activity.defn
    def discard_abandoned_vault(self, request: VaultRequest) -> str:
        """After the vault workflow gave up (the method is failed, the customer was told so):
        delete from the gateway what an attempt may still have vaulted under the request's
        token. Idempotent (an unknown token is already deleted). "kept" if the method was
        recorded active after all, "no_token" for a vault started without a token of ours
        (nothing identifies its method), else "deleted"."""
        stored = self._payment_methods.get(request.payment_method_id)
        if stored is not None and stored.status == VaultStatus.ACTIVE:
            return "kept"
        if request.gateway_token is None:
            return "no_token"
        token = request.gateway_token
        _call("delete_payment_method", lambda: self._gateway.delete_payment_method(token))
        return "deleted"

    @activity.defn
    def remove_payment_method(self, request: RemovePaymentMethodRequest) -> str:
        """Delete the saved method from the gateway's vault (idempotent: the gateway treats
        an unknown token as deleted). "unknown" if there is no such row, "not_vaulted" if
        the gateway never vaulted it (pending or failed). A token that does not decrypt, or a
        deletion the gateway rejects as malformed, is a non-retryable ApplicationError."""
        method = self._payment_methods.get(request.payment_method_id)
        if method is None:
            return "unknown"
        if method.token_ciphertext is None:
            return "not_vaulted"
        try:
            token = self._cipher.decrypt(
                method.token_ciphertext, payment_method_id=method.payment_method_id
            )
        except TokenDecryptionFailed as exc:
            raise non_retryable(exc.message, ErrorTypes.PAYMENT_METHOD_UNREADABLE) from exc
        _call("delete_payment_method", lambda: self._gateway.delete_payment_method(token))
        return "deleted"

    @activity.defn
    def gateway_refund(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        """Give money back: a refund of a settled sale; a void of an unsettled one when the
        whole payment is returned; NOT_SETTLED when a partial refund must wait for
        settlement (the workflow sleeps durably and asks again); REFUNDED without a call
        when the amount is zero. REFUSED (error_code "invalid_request", not retried) when
        the gateway rejects a request as malformed: nothing was given back, and the same
        request would be refused again."""
        try:
            return self._give_back(request)
        except GatewayRequestRejected as exc:
            log.warning(
                "refund_rejected_as_malformed", refund_id=request.refund_id, http_status=exc.status
            )
            return GatewayRefundResult(
                GatewayRefundOutcome.REFUSED, error_code=INVALID_REQUEST, error_message=exc.message
            )

    def _give_back(self, request: GatewayRefundRequest) -> GatewayRefundResult:
        if request.amount_minor == 0:
            # A converted payment's refund worth less than half a unit of the currency
            # charged takes no share of the charge (a later refund carries it, see
            # RefundRepository): nothing to give back, and the gateway refuses a zero amount.
            return GatewayRefundResult(GatewayRefundOutcome.REFUNDED)
        key = f"refund-{request.refund_id}"
        sale = _call(
            "find", lambda: self._gateway.find(request.transaction_id), rejection_is_a_result=True
        )
        if request.whole_payment and sale.status == "voided":
            # A retry after our own void went through (the activity died before returning).
            return GatewayRefundResult(
                GatewayRefundOutcome.VOIDED, gateway_transaction_id=sale.transaction_id
            )
        if request.whole_payment and sale.status in VOIDABLE_STATUSES:
            voided = _call(
                "void",
                lambda: self._gateway.void(request_key=key, transaction_id=sale.transaction_id),
                rejection_is_a_result=True,
            )
            if voided.succeeded:
                return GatewayRefundResult(
                    GatewayRefundOutcome.VOIDED, gateway_transaction_id=sale.transaction_id
                )
            if voided.error_code != CANNOT_VOID:  # else it settled meanwhile: refund it below
                return _refused(voided)
        elif sale.status not in SETTLED_STATUSES:
            return GatewayRefundResult(GatewayRefundOutcome.NOT_SETTLED)

        amount = Money(request.amount_minor, request.currency)
        refunded = _call(
            "refund",
            lambda: self._gateway.refund(
                request_key=key, transaction_id=sale.transaction_id, amount=amount
            ),
            rejection_is_a_result=True,
        )
        if refunded.succeeded:
            assert refunded.transaction is not None
            return GatewayRefundResult(
                GatewayRefundOutcome.REFUNDED,
                gateway_transaction_id=refunded.transaction.transaction_id,
            )
        if refunded.error_code == CANNOT_REFUND_UNSETTLED:
            return GatewayRefundResult(GatewayRefundOutcome.NOT_SETTLED)
        return _refused(refunded)


def customer_id_for(merchant_id: str | None, user_id: str) -> str:
    """The gateway customer of a merchant's user: stable, and free of the ids' characters.
    Two merchants' users with the same id are two customers. (``merchant_id`` None: a vault
    started before merchants existed, which used the user id alone.)"""
    name = f"payments:user:{user_id}"
    if merchant_id is not None:
        name = f"payments:merchant:{merchant_id}:user:{user_id}"
    return "c" + uuid.uuid5(uuid.NAMESPACE_URL, name).hex


def _charge_result(outcome: SaleOutcome) -> ChargeResult:
    transaction = outcome.transaction
    # The processor's response code, or when the gateway made no transaction the code of
    # the validation error. A gateway rejection's reason (fraud, application_incomplete...)
    # is no response code: its failure_message tells it, failure_reason is gateway_rejected.
    code = (
        transaction.processor_response_code
        if transaction is not None
        else (outcome.decline_code if not outcome.approved else None)
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


def _failed_charge(reason: str, message: str) -> ChargeResult:
    """A charge that ends the payment as failed without a sale at the gateway."""
    return ChargeResult(
        approved=False,
        transaction_id=None,
        gateway_status=None,
        processor_response_code=None,
        failure_reason=reason,
        failure_message=message,
    )


def _refused(outcome: ReversalOutcome) -> GatewayRefundResult:
    return GatewayRefundResult(
        GatewayRefundOutcome.REFUSED,
        error_code=outcome.error_code,
        error_message=outcome.error_message,
    )
