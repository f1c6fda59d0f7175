"""Fakes for unit and workflow tests only: an in-memory gateway and a recording publisher.

End-to-end tests never use these; they run the braintree SDK against the sandbox server and
publish to the real broker.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from payments.errors import GatewayUnavailable
from payments.gateway.types import GatewayTransaction, RefundOutcome, SaleOutcome
from payments.money import Money


@dataclass
class FakeGateway:
    """Approves unless told otherwise; counts calls; can fail N times with GatewayUnavailable."""

    decline_code: str | None = None
    unavailable_times: int = 0
    sale_status: str = "submitted_for_settlement"
    # A sale settles on the n-th find (None: never by itself), as if time had passed.
    settle_on_find: int | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)  # (operation, request_key)
    transactions: dict[str, GatewayTransaction] = field(default_factory=dict)
    by_key: dict[str, GatewayTransaction] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _maybe_unavailable(self) -> None:
        if self.unavailable_times > 0:
            self.unavailable_times -= 1
            raise GatewayUnavailable("injected: gateway timed out")

    def sale(
        self, *, request_key: str, order_id: str, amount: Money, payment_method_nonce: str
    ) -> SaleOutcome:
        with self._lock:
            self.calls.append(("sale", request_key))
            self._maybe_unavailable()
            if request_key in self.by_key:
                tx = self.by_key[request_key]
                return SaleOutcome(approved=tx.status != "processor_declined", transaction=tx)
            declined = self.decline_code is not None
            tx = GatewayTransaction(
                transaction_id=f"tx{next(self._ids)}",
                type="sale",
                status="processor_declined" if declined else self.sale_status,
                amount=amount,
                order_id=order_id,
                processor_response_code=self.decline_code or "1000",
                processor_response_text="Do Not Honor" if declined else "Approved",
            )
            self.transactions[tx.transaction_id] = tx
            self.by_key[request_key] = tx
            if declined:
                return SaleOutcome(
                    approved=False,
                    transaction=tx,
                    decline_code=self.decline_code,
                    decline_message="Do Not Honor",
                    failure_reason="processor_declined",
                )
            return SaleOutcome(approved=True, transaction=tx)

    def settle(self, transaction_id: str) -> None:
        with self._lock:
            self.transactions[transaction_id] = replace(
                self.transactions[transaction_id], status="settled"
            )

    def find(self, transaction_id: str) -> GatewayTransaction:
        with self._lock:
            self.calls.append(("find", transaction_id))
            self._maybe_unavailable()
            finds = sum(1 for op, _ in self.calls if op == "find")
            tx = self.transactions[transaction_id]
            if self.settle_on_find is not None and finds >= self.settle_on_find:
                tx = replace(tx, status="settled")
                self.transactions[transaction_id] = tx
            return tx

    def refund(
        self, *, request_key: str, transaction_id: str, amount: Money | None
    ) -> RefundOutcome:
        with self._lock:
            self.calls.append(("refund", request_key))
            sale = self.transactions[transaction_id]
            if sale.status not in ("settled", "settling"):
                return RefundOutcome(False, None, "91506", "Cannot refund unsettled")
            credit = GatewayTransaction(
                transaction_id=f"tx{next(self._ids)}",
                type="credit",
                status="submitted_for_settlement",
                amount=amount or sale.amount,
                order_id=sale.order_id,
                processor_response_code="1002",
                processor_response_text="Processed",
                refunded_transaction_id=sale.transaction_id,
            )
            self.transactions[credit.transaction_id] = credit
            return RefundOutcome(True, credit)

    def void(self, *, request_key: str, transaction_id: str) -> RefundOutcome:
        with self._lock:
            self.calls.append(("void", request_key))
            sale = self.transactions[transaction_id]
            if sale.status not in ("authorized", "submitted_for_settlement"):
                return RefundOutcome(False, None, "91504", "Cannot void")
            voided = replace(sale, status="voided")
            self.transactions[transaction_id] = voided
            return RefundOutcome(True, voided)


@dataclass
class RecordingPublisher:
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    async def publish(self, topic: str, key: str, event: dict[str, Any]) -> None:
        self.events.append((topic, key, event))

    def of(self, topic: str, key: str) -> list[dict[str, Any]]:
        return [e for t, k, e in self.events if t == topic and k == key]
