"""Starting payments and refunds: the business logic behind POST /initiate-payment, POST
/refund and the ``payment_initiation`` topic, shared by the API and the Kafka consumer.

Order of work, and why:
1. an idempotency key (header, or the message's key) is looked up first, scoped to the
   merchant: a client retrying after a success gets its payment back, whatever changed since
   (the order is paid now, the rate moved, the saved method was deleted), as Stripe promises;
2. validate everything a client can get wrong (4xx before anything is written);
3. write the row (payment ``pending`` / refund ``initiated``) together with the key's record —
   for refunds this is where the amount is reserved under the payment's lock, so concurrent
   refunds cannot overdraw;
4. start the workflow, idempotently by id.
If step 4 fails and Temporal confirms the workflow does not exist, step 3 is undone: nothing
stays half-written. A key is remembered for AUTH_IDEMPOTENCY_TTL_SECONDS (24 h); afterwards it
starts something new.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol, TypeVar

import structlog

from payments.config import AuthSettings, PolicySettings
from payments.contracts import PaymentRequest, PaymentSnapshot, RefundSnapshot
from payments.db.database import Database
from payments.db.models import Payment, Refund
from payments.db.repositories.idempotency import IdempotencyClaim
from payments.errors import (
    InvalidRequest,
    NotFound,
    NotSent,
    ServiceUnavailable,
    UnknownMerchant,
    UnsupportedCurrency,
)
from payments.money import Money, minor_units
from payments.orders.checks import check_order_for_payment
from payments.orders.client import OrderService
from payments.vocabulary import PaymentMethod, PaymentStatus, RefundStatus, VaultStatus

log = structlog.get_logger(__name__)
T = TypeVar("T")


class WorkflowStarter(Protocol):
    async def start_payment(
        self, request: PaymentRequest, *, wait_seconds: float | None = None
    ) -> PaymentSnapshot | None: ...
    async def start_refund(
        self,
        refund_id: str,
        payment_id: str,
        *,
        created_at: datetime,
        restart: bool = False,
        wait_seconds: float | None = None,
    ) -> RefundSnapshot | None: ...
    async def exists(self, workflow_id: str) -> bool: ...


@dataclass(frozen=True)
class InitiatePayment:
    # Whose payment: the API key's merchant, or the merchant a payment_initiation message
    # names.
    merchant_id: str
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
    # Merchant-initiated: retry soft declines on the configured schedule (a saved payment
    # method only: a nonce cannot be charged twice).
    retry: bool = False
    # Who asked: "api" or "consumer" (recorded in the audit trail).
    source: str = "api"
    # Answer once the payment is final if it is within this many seconds (Prefer: wait=N).
    wait_seconds: float | None = None


@dataclass(frozen=True)
class Conversion:
    charged: Money
    rate: str
    as_of: datetime


def convert(amount: Money, rate: Decimal, currency: str) -> Money:
    """``amount`` in ``currency`` at ``rate``, rounded half-even to that currency's units."""
    exact = amount.to_decimal() * rate
    return Money.parse(
        exact.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_EVEN),
        currency,
    )


@dataclass(frozen=True)
class RequestRefund:
    # The merchant asking: the payment must be one of its own. None: the platform operator
    # (an admin key), for any merchant's payment.
    merchant_id: str | None
    payment_id: str
    reason: str
    amount: str | None = None  # None: the whole remainder
    idempotency_key: str | None = None
    # Answer once the refund is final if it is within this many seconds (Prefer: wait=N).
    wait_seconds: float | None = None


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def gateway_order_id(merchant_id: str, order_id: str) -> str:
    """What the gateway knows a payment's sale by. Merchant ids cannot hold ':', so two
    merchants' equal order ids never share one (a retried charge looks sales up by it)."""
    return f"{merchant_id}:{order_id}"


class PaymentService:
    def __init__(
        self,
        db: Database,
        workflows: WorkflowStarter,
        policy: PolicySettings,
        auth: AuthSettings,
        orders: OrderService | None = None,
    ) -> None:
        self._db = db
        self._workflows = workflows
        self._policy = policy
        self._auth = auth
        self._orders = orders

    def _claim(
        self, merchant_id: str, key: str | None, request_fingerprint: str
    ) -> IdempotencyClaim | None:
        if key is None:
            return None
        return IdempotencyClaim(
            merchant_id=merchant_id,
            key=key,
            fingerprint=request_fingerprint,
            ttl_seconds=self._auth.idempotency_ttl_seconds,
        )

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
        # The request as the client sent it (before the Order Service fills anything in):
        # a replay is recognised by what was sent, not by what it resolved to.
        request_fingerprint = fingerprint(
            command.order_id,
            command.user_id,
            command.amount,
            command.currency.upper() if command.currency else None,
            command.payment_method,
            command.payment_token,
            command.payment_method_id,
            command.retry,
        )
        claim = self._claim(command.merchant_id, command.idempotency_key, request_fingerprint)
        if claim is not None:
            replayed = await asyncio.to_thread(self._db.payments.by_idempotency_key, claim)
            if replayed is not None:
                return await self._resume(replayed, command, created=False)
        if not await asyncio.to_thread(self._db.access.merchant_exists, command.merchant_id):
            raise UnknownMerchant(
                f"merchant {command.merchant_id} does not exist", field="merchant_id"
            )
        if (command.payment_token is None) == (command.payment_method_id is None):
            raise InvalidRequest(
                "give exactly one of payment_token (a nonce from the client SDK) and "
                "payment_method_id (a saved payment method)",
                field="payment_token",
            )
        if command.retry and command.payment_method_id is None:
            # A nonce is single use: a soft decline's retry could never charge it again.
            raise InvalidRequest(
                '"retry": true needs payment_method_id (a saved payment method): a '
                "payment_token nonce can be charged only once, so a retry could never succeed",
                field="payment_method_id",
            )
        amount = await self._amount_to_charge(command)
        currency = amount.currency
        conversion = await self._conversion(amount)
        if command.payment_method_id is not None:
            await self._check_vaulted_method(
                command.payment_method_id, command.user_id, command.merchant_id
            )
        payment = Payment(
            payment_id=str(uuid.uuid4()),
            merchant_id=command.merchant_id,
            order_id=command.order_id,
            gateway_order_id=gateway_order_id(command.merchant_id, command.order_id),
            user_id=command.user_id,
            amount=amount.minor,
            currency=currency,
            payment_method=command.payment_method,
            payment_method_id=command.payment_method_id,
            retry_enabled=command.retry,
            idempotency_key=command.idempotency_key,
            request_fingerprint=request_fingerprint,
        )
        if conversion is not None:
            payment.charged_amount = conversion.charged.minor
            payment.charged_currency = conversion.charged.currency
            payment.exchange_rate = conversion.rate
            payment.rate_as_of = conversion.as_of
        stored, created = await asyncio.to_thread(
            lambda: self._db.payments.insert(payment, idempotency=claim, cause=command.source)
        )
        return await self._resume(stored, command, created=created)

    async def _resume(
        self, stored: Payment, command: InitiatePayment, *, created: bool
    ) -> tuple[Payment, bool]:
        """Start the stored payment's workflow: new, or a replay of a payment still pending —
        a no-op if it runs already, and the repair if an earlier attempt stored the row but
        never reached Temporal."""
        if not created and stored.payment_status != PaymentStatus.PENDING:
            return stored, False
        charged_minor, charged_currency = stored.charge
        converted = stored.charged_amount is not None
        request = PaymentRequest(
            payment_id=stored.payment_id,
            order_id=stored.order_id,
            user_id=stored.user_id,
            amount_minor=charged_minor,
            currency=charged_currency,
            payment_method=stored.payment_method,
            payment_token=command.payment_token,
            idempotency_key=stored.idempotency_key,
            request_fingerprint=stored.request_fingerprint,
            payment_method_id=stored.payment_method_id,
            update_order_service=self._orders is not None,
            retry_soft_declines=stored.retry_enabled,
            policy=self._policy.payment_policy(),
            presented_amount_minor=stored.amount if converted else None,
            presented_currency=stored.currency if converted else None,
            exchange_rate=stored.exchange_rate,
            rate_as_of=stored.rate_as_of.isoformat() if stored.rate_as_of else None,
            merchant_id=stored.merchant_id,
            gateway_order_id=stored.gateway_order_id,
        )
        final = await self._start_or_undo(
            "payment",
            f"payment-{stored.payment_id}",
            lambda: self._workflows.start_payment(request, wait_seconds=command.wait_seconds),
            undo=lambda: self._db.payments.discard_unstarted(stored.payment_id),
            created=created,
        )
        if final is not None or command.wait_seconds is not None:
            # Final within the wait asked for, or a long wait began (held for review, waiting
            # for settlement or a retry): the row as recorded now, verdict included.
            recorded = await asyncio.to_thread(self._db.payments.get, stored.payment_id)
            stored = recorded or stored
        log.info(
            "payment initiated",
            payment_id=stored.payment_id,
            merchant_id=stored.merchant_id,
            order_id=stored.order_id,
            amount=str(Money(stored.amount, stored.currency)),
            currency=stored.currency,
            replay=not created,
        )
        return stored, created

    async def request_refund(self, command: RequestRefund) -> tuple[Refund, bool]:
        payment = await asyncio.to_thread(self._db.payments.get, command.payment_id)
        if payment is None or (
            command.merchant_id is not None and payment.merchant_id != command.merchant_id
        ):
            raise NotFound(f"payment {command.payment_id} not found", field="payment_id")
        claim = self._claim(
            payment.merchant_id,
            command.idempotency_key,
            fingerprint(payment.payment_id, command.amount, command.reason),
        )
        if claim is not None:
            replayed = await asyncio.to_thread(self._db.refunds.by_idempotency_key, claim)
            if replayed is not None:
                return await self._start_refund(
                    replayed, created=False, wait_seconds=command.wait_seconds
                )
        amount = (
            Money.parse(command.amount, payment.currency) if command.amount is not None else None
        )
        refund = Refund(
            refund_id=str(uuid.uuid4()),
            merchant_id=payment.merchant_id,
            payment_id=payment.payment_id,
            amount=amount.minor if amount else 0,  # set to the remainder when None
            currency=payment.currency,
            reason=command.reason,
            idempotency_key=command.idempotency_key,
            request_fingerprint=claim.fingerprint if claim else None,
        )
        stored, created = await asyncio.to_thread(
            lambda: self._db.refunds.reserve(
                refund, whole_remainder=amount is None, idempotency=claim
            )
        )
        return await self._start_refund(stored, created=created, wait_seconds=command.wait_seconds)

    async def _start_refund(
        self, stored: Refund, *, created: bool, wait_seconds: float | None
    ) -> tuple[Refund, bool]:
        if not created and stored.refund_status != RefundStatus.INITIATED:
            return stored, False
        final = await self._start_or_undo(
            "refund",
            f"refund-{stored.refund_id}",
            lambda: self._workflows.start_refund(
                stored.refund_id,
                stored.payment_id,
                created_at=stored.created_at,
                wait_seconds=wait_seconds,
            ),
            undo=lambda: self._db.refunds.discard_unstarted(stored.refund_id),
            created=created,
        )
        if final is not None:  # final within the wait asked for: the row as recorded
            recorded_refund = await asyncio.to_thread(self._db.refunds.get, stored.refund_id)
            stored = recorded_refund or stored
        log.info(
            "refund requested",
            refund_id=stored.refund_id,
            payment_id=stored.payment_id,
            amount=str(Money(stored.amount, stored.currency)),
            replay=not created,
        )
        return stored, created

    async def _conversion(self, amount: Money) -> Conversion | None:
        """None when the merchant has an account in the currency; else the amount in the
        settlement currency at the newest rate, which must be fresh enough."""
        if amount.currency in self._policy.accepted_currencies:
            return None
        settlement = self._policy.settlement_currency
        rate = await asyncio.to_thread(self._db.exchange_rates.current, amount.currency, settlement)
        if rate is None:
            raise UnsupportedCurrency(
                f"no merchant account for {amount.currency} and no exchange rate from "
                f"{amount.currency} to {settlement}; accepted as they are: "
                + ", ".join(self._policy.accepted_currencies),
                field="currency",
            )
        age = (datetime.now(UTC) - rate.as_of).total_seconds()
        if age > self._policy.max_rate_age_seconds:
            raise UnsupportedCurrency(
                f"the {amount.currency}/{settlement} exchange rate is out of date "
                f"(published {rate.as_of.isoformat()}); payments in {amount.currency} are "
                "refused until a current rate is set",
                field="currency",
            )
        return Conversion(convert(amount, Decimal(rate.rate), settlement), rate.rate, rate.as_of)

    async def _check_vaulted_method(
        self, payment_method_id: str, user_id: str, merchant_id: str
    ) -> None:
        """A saved method of another merchant is refused exactly like an unknown one."""
        method = await asyncio.to_thread(self._db.payment_methods.get, payment_method_id)
        if (
            method is None
            or method.merchant_id != merchant_id
            or method.user_id != user_id
            or method.status != VaultStatus.ACTIVE
            or method.deleted_at is not None
        ):
            raise InvalidRequest(
                f"payment method {payment_method_id} is not a saved payment method of user "
                f"{user_id}",
                field="payment_method_id",
            )

    async def _start_or_undo(
        self,
        what: str,
        workflow_id: str,
        start: Callable[[], Awaitable[T]],
        *,
        undo: Callable[[], None],
        created: bool,
    ) -> T:
        """Start the workflow (``start``'s answer is returned); when that fails, undo the row
        this call ``created`` (see ``_undo_unless_started``) and raise ServiceUnavailable: the
        client retries."""
        try:
            return await start()
        except Exception as exc:
            await self._undo_unless_started(
                workflow_id,
                undo,
                created=created,
                certainly_not_started=isinstance(exc, NotSent),
            )
            raise ServiceUnavailable(f"the {what} could not be started; retry later") from exc

    async def _undo_unless_started(
        self,
        workflow_id: str,
        undo: Callable[[], None],
        *,
        created: bool,
        certainly_not_started: bool,
    ) -> None:
        """Remove the row we just wrote, but only once it is certain that the workflow does
        not exist (Temporal was never reached, or confirms it): a start whose reply was lost
        may have succeeded, and then the row must stay (a retry with the same key, or the
        reconciliation, finishes it)."""
        if not created:
            return
        if certainly_not_started:
            await asyncio.to_thread(undo)
            log.warning("Temporal unreachable; row removed", workflow_id=workflow_id)
            return
        try:
            started = await self._workflows.exists(workflow_id)
        except Exception:
            log.warning("workflow start unconfirmed; row kept for retry", workflow_id=workflow_id)
            return
        if not started:
            await asyncio.to_thread(undo)
            log.warning("workflow could not be started; row removed", workflow_id=workflow_id)
