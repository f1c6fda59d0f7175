"""What an operator can search runs by in the Temporal UI, and what a run shows as its step.

Every payment run carries its ids, method, currency, amount and status as custom search
attributes, set when it starts and upserted when its status changes, so the UI's list answers
``PaymentStatus="failure" AND PaymentMethod="wallet" AND UserId="..."`` although every run,
paid or declined, ends COMPLETED. Refund runs carry ``PaymentId`` and ``RefundStatus``.

Search attributes are stored and indexed in plain text (the payload codec does not reach
them): only ids, statuses, the method, the currency and the amount go there, never a token,
a card number or a name.

A namespace accepts only attributes registered beforehand: the dev server at start
(``dev_server_flags``), a real cluster with ``payments search-attributes``
(:func:`workflows.client.register_search_attributes`).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)

from payments.contracts import PaymentRequest, RefundRequest

PAYMENT_ID = SearchAttributeKey.for_keyword("PaymentId")
ORDER_ID = SearchAttributeKey.for_keyword("OrderId")
USER_ID = SearchAttributeKey.for_keyword("UserId")
MERCHANT_ID = SearchAttributeKey.for_keyword("MerchantId")
PAYMENT_STATUS = SearchAttributeKey.for_keyword("PaymentStatus")
PAYMENT_METHOD = SearchAttributeKey.for_keyword("PaymentMethod")
CURRENCY = SearchAttributeKey.for_keyword("Currency")
AMOUNT_MINOR = SearchAttributeKey.for_int("AmountMinor")
REFUND_STATUS = SearchAttributeKey.for_keyword("RefundStatus")

SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[str] | SearchAttributeKey[int], ...] = (
    PAYMENT_ID,
    ORDER_ID,
    USER_ID,
    MERCHANT_ID,
    PAYMENT_STATUS,
    PAYMENT_METHOD,
    CURRENCY,
    AMOUNT_MINOR,
    REFUND_STATUS,
)

# The patch under which a run upserts its status; runs recorded before it replay unchanged.
FOLLOW_STATUS_PATCH = "search-attributes-follow-status"
# The merchant of payments started before merchants existed (PaymentRequest.merchant_id None).
DEFAULT_MERCHANT = "default"


def type_name(key: SearchAttributeKey[str] | SearchAttributeKey[int]) -> str:
    """The type as the Temporal CLI names it: ``Keyword``, ``Int``."""
    return key.indexed_value_type.name.title()


def dev_server_flags() -> list[str]:
    """``temporal server start-dev`` arguments registering every attribute at start."""
    flags: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={type_name(key)}"]
    return flags


def payment_attributes(request: PaymentRequest) -> TypedSearchAttributes:
    """What a payment run is found by, set when it starts (status pending)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(PAYMENT_ID, request.payment_id),
            SearchAttributePair(ORDER_ID, request.order_id),
            SearchAttributePair(USER_ID, request.user_id),
            SearchAttributePair(MERCHANT_ID, request.merchant_id or DEFAULT_MERCHANT),
            SearchAttributePair(PAYMENT_STATUS, "pending"),
            SearchAttributePair(PAYMENT_METHOD, request.payment_method),
            SearchAttributePair(CURRENCY, request.currency),
            SearchAttributePair(AMOUNT_MINOR, request.amount_minor),
        ]
    )


def refund_attributes(request: RefundRequest) -> TypedSearchAttributes:
    """What a refund run is found by, set when it starts (status initiated)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(PAYMENT_ID, request.payment_id),
            SearchAttributePair(REFUND_STATUS, "initiated"),
        ]
    )


class ShowsProgress:
    """A run's status and step, as operators see them: setting ``_step`` shows it as the
    run's current details; ``_status_is`` records a new status and upserts it into the run's
    ``STATUS_ATTRIBUTE`` (PaymentWorkflow, RefundWorkflow)."""

    STATUS_ATTRIBUTE: SearchAttributeKey[str]

    def __init__(self, status: str) -> None:
        self._status = status
        self._step_name = "starting"

    @property
    def _step(self) -> str:
        return self._step_name

    @_step.setter
    def _step(self, step: str) -> None:
        self._step_name = step
        show_step(self._status, step)

    def _status_is(self, status: str) -> None:
        self._status = status
        follow_status(self.STATUS_ATTRIBUTE, status)


def follow_status(key: SearchAttributeKey[str], status: str) -> None:
    """Inside a workflow: the run's status attribute becomes ``status`` (one history event
    when it changes; nothing when it is already that, or in runs recorded before the patch)."""
    if workflow.info().typed_search_attributes.get(key) == status:
        return
    if workflow.patched(FOLLOW_STATUS_PATCH):
        workflow.upsert_search_attributes([key.value_set(status)])


def show_step(status: str, step: str) -> None:
    """Inside a workflow: the step shown as the run's current details in the UI (metadata,
    not an event: free in history and in replay)."""
    workflow.set_current_details(f"**{status}**: {step.replace('_', ' ')}")
