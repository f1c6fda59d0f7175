"""Starting payments and refunds: the business logic behind POST /initiate-payment, POST
/refund and the ``payment_initiation`` topic, shared by the API and the Kafka consumer.

Order of work, and why:
1. validate everything a client can get wrong (4xx before anything is written);
2. write the row (payment ``pending`` / refund ``initiated``) — for refunds this is where the
   amount is reserved under the payment's lock, so concurrent refunds cannot overdraw;
3. start the workflow, idempotently by id.
If step 3 fails and Temporal confirms the workflow does not exist, step 2 is undone: nothing
stays half-written. An idempotency key (header, or the message's key) maps to a fixed id, so
repeating a request returns the first result and starts nothing new.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from payments.config import PolicySettings
from payments.contracts import PaymentRequest
from payments.db.models import Payment, PaymentMethod, Refund
from payments.db.repository import PaymentRepository
from payments.errors import InvalidRequest, NotFound, ServiceUnavailable, UnsupportedCurrency
from payments.money import Money
from payments.orders.checks import check_order_for_payment
from payments.orders.client import OrderService

log = structlog.get_logger(__name__)

_IDEMPOTENCY_NAMESPACE = uuid.UUID("0b7a1f0e-8d43-4c2a-9e51-3f6c2d9a7b18")


class WorkflowStarter(Protocol):
    async def start_payment(self, request: PaymentRequest) -> None: ...
    async def start_refund(
        self, refund_id: str, payment_id: str, *, restart: bool = False
    ) -> None: ...
    async def exists(self, workflow_id: str) -> bool: ...


@dataclass(frozen=True)
class InitiatePayment:
    order_id: str
    user_id: str
    # Both required, unless the Order Service is configured: then they come from the order
    # (and, when given, must match it).
    amount: str | None
    currency: str | None
    payment_method: PaymentMethod
    # Exactly one of: a single-use nonce, or a payment method vaulted for this user.
    payment_token: str | None
    idempotency_key: str | None = None
    payment_method_id: str | None = None


@dataclass(frozen=True)
class RequestRefund:
    payment_id: str
    reason: str
    amount: str | None = None  # None: the whole remainder
    idempotency_key: str | None = None


def id_for_key(kind: str, key: str | None) -> str:
    """A fixed id per idempotency key (so a repeat maps to the same row and workflow id),
    else a random one."""
    if key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{kind}:{key}"))


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


class PaymentService:
    def __init__(
        self,
        repository: PaymentRepository,
        workflows: WorkflowStarter,
        policy: PolicySettings,
        orders: OrderService | None = None,
    ) -> None:
        self._repository = repository
        self._workflows = workflows
        self._policy = policy
        self._orders = orders

    async def _amount_to_charge(self, command: InitiatePayment) -> Money:
        """With the Order Service: the order decides (it must await payment and belong to the
        user). Without it, the request's amount and currency are trusted."""
        if self._orders is not None:
            order = await self._orders.get_order(command.order_id)
            return check_order_for_payment(
                order,
                order_id=command.order_id,
                user_id=command.user_id,
                amount=command.amount,
                currency=command.currency,
            )
        if command.currency is None:
            raise InvalidRequest("currency is required", field="currency")
        if command.amount is None:
            raise InvalidRequest("amount is required", field="amount")
        return Money.parse(command.amount, command.currency.upper())

    async def initiate_payment(self, command: InitiatePayment) -> tuple[Payment, bool]:
        """Returns the payment and whether this call created it (False: idempotent replay)."""
        amount = await self._amount_to_charge(command)
        currency = amount.currency
        if currency not in self._policy.accepted_currencies:
            raise UnsupportedCurrency(
                f"{currency} is not accepted; accepted: "
                + ", ".join(self._policy.accepted_currencies),
                field="currency",
            )
        if (command.payment_token is None) == (command.payment_method_id is None):
            raise InvalidRequest(
                "give exactly one of payment_token (a nonce from the client SDK) and "
                "payment_method_id (a saved payment method)",
                field="payment_token",
            )
        if command.payment_method_id is not None:
            await self._check_vaulted_method(command.payment_method_id, command.user_id)
        request_fingerprint = fingerprint(
            command.order_id,
            command.user_id,
            str(amount),
            currency,
            command.payment_method,
            command.payment_token,
            command.payment_method_id,
        )
        payment = Payment(
            payment_id=id_for_key("payment", command.idempotency_key),
            order_id=command.order_id,
            user_id=command.user_id,
            amount=amount.minor,
            currency=currency,
            payment_method=command.payment_method,
            payment_method_id=command.payment_method_id,
            idempotency_key=command.idempotency_key,
            request_fingerprint=request_fingerprint,
        )
        stored, created = await asyncio.to_thread(self._repository.insert_payment, payment)
        if not created and stored.payment_status != "pending":
            return stored, False
        # New, or a replay of a payment still pending: (re)start — a no-op if it runs already,
        # and the repair if an earlier attempt stored the row but never reached Temporal.
        request = PaymentRequest(
            payment_id=stored.payment_id,
            order_id=stored.order_id,
            user_id=stored.user_id,
            amount_minor=stored.amount,
            currency=stored.currency,
            payment_method=stored.payment_method,
            payment_token=command.payment_token,
            idempotency_key=stored.idempotency_key,
            request_fingerprint=stored.request_fingerprint,
            payment_method_id=stored.payment_method_id,
            pending_check_schedule_seconds=list(self._policy.pending_check_schedule_seconds),
            pending_deadline_seconds=self._policy.pending_deadline_seconds,
            update_order_service=self._orders is not None,
        )
        try:
            await self._workflows.start_payment(request)
        except Exception as exc:
            await self._undo_unless_started(
                f"payment-{stored.payment_id}",
                lambda: self._repository.discard_unstarted_payment(stored.payment_id),
                created=created,
            )
            raise ServiceUnavailable("the payment could not be started; retry later") from exc
        log.info(
            "payment initiated",
            payment_id=stored.payment_id,
            order_id=stored.order_id,
            amount=str(amount),
            currency=currency,
            replay=not created,
        )
        return stored, created

    async def request_refund(self, command: RequestRefund) -> tuple[Refund, bool]:
        payment = await asyncio.to_thread(self._repository.get_payment, command.payment_id)
        if payment is None:
            raise NotFound(f"payment {command.payment_id} not found", field="payment_id")
        amount = (
            Money.parse(command.amount, payment.currency) if command.amount is not None else None
        )
        refund = Refund(
            refund_id=id_for_key("refund", command.idempotency_key),
            payment_id=payment.payment_id,
            amount=amount.minor if amount else 0,  # set to the remainder when None
            currency=payment.currency,
            reason=command.reason,
            idempotency_key=command.idempotency_key,
            request_fingerprint=fingerprint(
                payment.payment_id, str(amount) if amount else None, command.reason
            ),
        )
        stored, created = await asyncio.to_thread(
            lambda: self._repository.reserve_refund(refund, whole_remainder=amount is None)
        )
        if not created and stored.refund_status != "initiated":
            return stored, False
        try:
            await self._workflows.start_refund(stored.refund_id, stored.payment_id)
        except Exception as exc:
            await self._undo_unless_started(
                f"refund-{stored.refund_id}",
                lambda: self._repository.discard_unstarted_refund(stored.refund_id),
                created=created,
            )
            raise ServiceUnavailable("the refund could not be started; retry later") from exc
        log.info(
            "refund requested",
            refund_id=stored.refund_id,
            payment_id=stored.payment_id,
            amount=str(Money(stored.amount, stored.currency)),
            replay=not created,
        )
        return stored, created

    async def _check_vaulted_method(self, payment_method_id: str, user_id: str) -> None:
        method = await asyncio.to_thread(self._repository.get_payment_method, payment_method_id)
        if method is None or method.user_id != user_id or method.deleted_at is not None:
            raise InvalidRequest(
                f"payment method {payment_method_id} is not a saved payment method of user "
                f"{user_id}",
                field="payment_method_id",
            )

    async def _undo_unless_started(
        self, workflow_id: str, undo: Callable[[], None], *, created: bool
    ) -> None:
        """Remove the row we just wrote, but only once Temporal confirms the workflow does not
        exist: a start whose reply was lost may have succeeded, and then the row must stay."""
        if not created:
            return
        try:
            started = await self._workflows.exists(workflow_id)
        except Exception:
            log.warning("workflow start unconfirmed; row kept for retry", workflow_id=workflow_id)
            return
        if not started:
            await asyncio.to_thread(undo)
            log.warning("workflow could not be started; row removed", workflow_id=workflow_id)
