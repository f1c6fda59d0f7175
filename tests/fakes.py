"""Fakes for unit and workflow tests only: an in-memory gateway and a recording publisher.

End-to-end tests never use these; they run the braintree SDK against the sandbox server and
publish to the real broker.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from payments.errors import GatewayRequestRejected, GatewayUnavailable, InvalidWebhook
from payments.gateway.types import (
    GatewayTransaction,
    InstrumentDetails,
    PaymentMethodNotFound,
    PaymentMethodProfile,
    ReversalOutcome,
    SaleOutcome,
    VaultedPaymentMethod,
    VaultOutcome,
    WebhookEvent,
)
from payments.money import Money

# What describe_payment_method answers for a nonce or token it has no profile for in
# ``FakeGateway.profiles``: the sandbox's Visa test card (country unknown).
VISA_PROFILE = PaymentMethodProfile(
    instrument_type="credit_card",
    bin="401288",
    last4="1881",
    brand="Visa",
    country_of_issuance=None,
    fingerprint="f" * 32,
)


def _new_id(prefix: str) -> str:
    """Unique across fakes, as the gateway's ids are: a test that found another test's
    transaction or token by its id would pass or fail by the order the tests ran in."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class FakeGateway:
    """Approves unless told otherwise; counts calls; can fail N times with GatewayUnavailable,
    and always with GatewayRequestRejected for the operations named in ``rejected``."""

    decline_code: str | None = None
    # Per new sale, in order: a decline code or None (approve); then decline_code applies.
    decline_sequence: list[str | None] = field(default_factory=list)
    unavailable_times: int = 0
    # Operations ("sale", "vault", "refund", "void", "find", ...) answered as the gateway
    # answers a request it cannot read: GatewayRequestRejected (HTTP 400), after the call is
    # counted.
    rejected: set[str] = field(default_factory=set)
    sale_status: str = "submitted_for_settlement"
    # A sale settles on the n-th find (None: never by itself), as if time had passed.
    settle_on_find: int | None = None
    # Status a settling sale ends in ("settled", or "settlement_declined").
    settles_as: str = "settled"
    # Sales made "behind our back" (an earlier attempt whose answer was lost), by order id.
    lost_sales: dict[str, GatewayTransaction] = field(default_factory=dict)
    vaulted: dict[str, VaultedPaymentMethod] = field(default_factory=dict)
    # describe_payment_method's answers by nonce or token; otherwise VISA_PROFILE for a
    # fake-valid-* nonce or a vaulted token, PaymentMethodNotFound for anything else.
    profiles: dict[str, PaymentMethodProfile] = field(default_factory=dict)
    described: list[str] = field(default_factory=list)  # the nonces and tokens described
    # Every describe_payment_method call fails with GatewayUnavailable (a lookup that never
    # answers: the fraud step runs out of time).
    describe_unavailable: bool = False
    # Vaults whose answer is lost after the method was stored (then GatewayUnavailable).
    vault_answers_lost: int = 0
    # Run while a vault is in flight, after the method was stored: a test acts "meanwhile".
    during_vault: Callable[[], None] | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)  # (operation, request_key)
    transactions: dict[str, GatewayTransaction] = field(default_factory=dict)
    by_key: dict[str, GatewayTransaction] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _maybe_unavailable(self) -> None:
        if self.unavailable_times > 0:
            self.unavailable_times -= 1
            raise GatewayUnavailable("injected: gateway timed out")

    def _maybe_rejected(self, operation: str) -> None:
        if operation in self.rejected:
            raise GatewayRequestRejected(
                "injected: the gateway refused the request as malformed (HTTP 400)", status=400
            )

    def sale(
        self,
        *,
        request_key: str,
        order_id: str,
        amount: Money,
        payment_method_nonce: str | None = None,
        payment_method_token: str | None = None,
        submit_for_settlement: bool = True,
    ) -> SaleOutcome:
        with self._lock:
            self.calls.append(("sale", request_key))
            self._maybe_rejected("sale")
            if payment_method_token is not None and payment_method_token not in {
                m.token for m in self.vaulted.values()
            }:
                raise AssertionError("sale with a token that was never vaulted")
            self._maybe_unavailable()
            if request_key in self.by_key:
                tx = self.by_key[request_key]
                return SaleOutcome(approved=tx.status != "processor_declined", transaction=tx)
            code = self.decline_sequence.pop(0) if self.decline_sequence else self.decline_code
            declined = code is not None
            tx = GatewayTransaction(
                transaction_id=_new_id("tx"),
                type="sale",
                status=(
                    "processor_declined"
                    if declined
                    else self.sale_status
                    if submit_for_settlement
                    else "authorized"
                ),
                amount=amount,
                order_id=order_id,
                processor_response_code=code or "1000",
                processor_response_text="Do Not Honor" if declined else "Approved",
            )
            self.transactions[tx.transaction_id] = tx
            self.by_key[request_key] = tx
            if declined:
                return SaleOutcome(
                    approved=False,
                    transaction=tx,
                    decline_code=code,
                    decline_message="Do Not Honor",
                    failure_reason="processor_declined",
                )
            return SaleOutcome(approved=True, transaction=tx)

    def describe_payment_method(
        self,
        *,
        payment_method_nonce: str | None = None,
        payment_method_token: str | None = None,
    ) -> PaymentMethodProfile:
        if bool(payment_method_nonce) == bool(payment_method_token):
            raise ValueError("describe_payment_method needs exactly one of nonce, token")
        reference = payment_method_nonce or payment_method_token or ""
        with self._lock:
            # Counted apart from ``calls`` and never made unavailable by ``unavailable_times``:
            # a read before the charge, which the tests of charges do not count.
            self.described.append(reference)
            self._maybe_rejected("describe_payment_method")
            if self.describe_unavailable:
                raise GatewayUnavailable("injected: the payment-method lookup timed out")
            if reference in self.profiles:
                return self.profiles[reference]
            known = (
                reference.startswith("fake-valid-")
                if payment_method_nonce
                else reference in self.vaulted
            )
            if not known:
                raise PaymentMethodNotFound("injected: no such payment method")
            return VISA_PROFILE

    def submit_for_settlement(self, *, request_key: str, transaction_id: str) -> SaleOutcome:
        with self._lock:
            self.calls.append(("submit_for_settlement", request_key))
            self._maybe_rejected("submit_for_settlement")
            self._maybe_unavailable()
            if (earlier := self.by_key.get(request_key)) is not None:
                # The same key again: the original answer, the sale as it is now.
                return SaleOutcome(
                    approved=True, transaction=self.transactions[earlier.transaction_id]
                )
            sale = self.transactions[transaction_id]
            if sale.status != "authorized":
                return SaleOutcome(
                    approved=False,
                    transaction=None,
                    decline_code="91507",
                    decline_message="Cannot submit for settlement unless status is authorized.",
                    failure_reason="not_authorized",
                )
            submitted = replace(sale, status="submitted_for_settlement")
            self.transactions[transaction_id] = submitted
            self.by_key[request_key] = submitted
            return SaleOutcome(approved=True, transaction=submitted)

    def settle(self, transaction_id: str) -> None:
        with self._lock:
            self.transactions[transaction_id] = replace(
                self.transactions[transaction_id], status="settled"
            )

    def find(self, transaction_id: str) -> GatewayTransaction:
        with self._lock:
            self.calls.append(("find", transaction_id))
            self._maybe_rejected("find")
            self._maybe_unavailable()
            finds = sum(1 for op, _ in self.calls if op == "find")
            tx = self.transactions[transaction_id]
            if self.settle_on_find is not None and finds >= self.settle_on_find:
                tx = replace(tx, status=self.settles_as)
                self.transactions[transaction_id] = tx
            return tx

    def find_sales_by_order_id(self, order_id: str) -> list[GatewayTransaction]:
        with self._lock:
            self.calls.append(("search", order_id))
            self._maybe_rejected("search")
            found = [t for t in self.transactions.values() if t.order_id == order_id]
            if order_id in self.lost_sales:
                found.append(self.lost_sales[order_id])
            return found

    def vault(
        self, *, customer_id: str, payment_method_nonce: str, token: str | None = None
    ) -> VaultOutcome:
        with self._lock:
            self.calls.append(("vault", customer_id))
            self._maybe_rejected("vault")
            if self.vault_answers_lost == 0:
                self._maybe_unavailable()
            if payment_method_nonce != "fake-valid-visa-nonce":
                return VaultOutcome(False, None, "91565", "Unknown or expired nonce")
            if token is not None and token in self.vaulted:
                return VaultOutcome(False, None, "91705", "Token is in use.")
            method = VaultedPaymentMethod(
                token=token or _new_id("token"),
                customer_id=customer_id,
                instrument=InstrumentDetails(
                    "credit_card", "Visa", "1881", "12/2030", None, "Visa ending 1881"
                ),
            )
            self.vaulted[method.token] = method
            if self.vault_answers_lost > 0:
                self.vault_answers_lost -= 1
                raise GatewayUnavailable("injected: the vault's answer was lost")
        if self.during_vault is not None:
            self.during_vault()
        return VaultOutcome(True, method)

    def find_payment_method(self, token: str) -> VaultedPaymentMethod | None:
        with self._lock:
            self.calls.append(("find_payment_method", token))
            self._maybe_unavailable()
            return self.vaulted.get(token)

    def delete_payment_method(self, token: str) -> None:
        with self._lock:
            self.calls.append(("delete_payment_method", token))
            self._maybe_rejected("delete_payment_method")
            self.vaulted.pop(token, None)

    def parse_webhook(self, signature: str, payload: str) -> WebhookEvent:
        if signature != "valid":
            raise InvalidWebhook("signature does not verify")
        return WebhookEvent("transaction_settled", payload, "settled")

    def refund(
        self, *, request_key: str, transaction_id: str, amount: Money | None
    ) -> ReversalOutcome:
        with self._lock:
            self.calls.append(("refund", request_key))
            self._maybe_rejected("refund")
            sale = self.transactions[transaction_id]
            if sale.status not in ("settled", "settling"):
                return ReversalOutcome(False, None, "91506", "Cannot refund unsettled")
            if amount is not None and amount.minor <= 0:  # as Braintree answers
                return ReversalOutcome(False, None, "81531", "Amount must be greater than zero.")
            credit = GatewayTransaction(
                transaction_id=_new_id("tx"),
                type="credit",
                status="submitted_for_settlement",
                amount=amount or sale.amount,
                order_id=sale.order_id,
                processor_response_code="1002",
                processor_response_text="Processed",
                refunded_transaction_id=sale.transaction_id,
            )
            self.transactions[credit.transaction_id] = credit
            return ReversalOutcome(True, credit)

    def void(self, *, request_key: str, transaction_id: str) -> ReversalOutcome:
        with self._lock:
            self.calls.append(("void", request_key))
            self._maybe_rejected("void")
            sale = self.transactions[transaction_id]
            if sale.status not in ("authorized", "submitted_for_settlement"):
                return ReversalOutcome(False, None, "91504", "Cannot void")
            voided = replace(sale, status="voided")
            self.transactions[transaction_id] = voided
            return ReversalOutcome(True, voided)


@dataclass
class RecordingPublisher:
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    # The next n publishes fail, as when the broker is down.
    failures: int = 0
    # Each publish waits this long before it is acknowledged.
    delay_seconds: float = 0.0

    async def publish(self, topic: str, key: str, event: dict[str, Any]) -> None:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)  # a slow broker
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("injected: broker unavailable")
        self.events.append((topic, key, event))

    def of(self, topic: str, key: str) -> list[dict[str, Any]]:
        return [e for t, k, e in self.events if t == topic and k == key]
