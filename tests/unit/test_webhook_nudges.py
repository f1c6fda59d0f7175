"""What a verified gateway webhook wakes: a pending payment's workflow, or the refunds of a
paid payment that wait for its sale to settle; nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from api.routes.webhooks import _nudge
from payments.db.models import Payment


@dataclass
class Stored:
    payment: Payment | None
    waiting: list[str] = field(default_factory=list)

    def find_by_transaction(self, transaction_id: str) -> Payment | None:
        return self.payment

    def initiated_ids(self, payment_id: str) -> list[str]:
        return self.waiting


@dataclass
class Workflows:
    nudged: list[str] = field(default_factory=list)

    async def nudge_payment(self, payment_id: str) -> bool:
        self.nudged.append(f"payment-{payment_id}")
        return True

    async def nudge_refund(self, refund_id: str) -> bool:
        self.nudged.append(f"refund-{refund_id}")
        return True


def payment(status: str) -> Payment:
    return Payment(
        payment_id="p-1",
        merchant_id="acme",
        order_id="o-1",
        user_id="u-1",
        amount=1000,
        currency="USD",
        payment_method="credit_card",
        payment_status=status,
        transaction_id="tx-1",
    )


async def nudge(stored: Stored, workflows: Workflows) -> dict[str, str]:
    any_stored, any_workflows = cast(Any, stored), cast(Any, workflows)
    return await _nudge("transaction_settled", "tx-1", any_stored, any_stored, any_workflows)


async def test_a_pending_payment_checks_now() -> None:
    workflows = Workflows()
    answer = await nudge(Stored(payment("pending"), ["r-1"]), workflows)
    assert answer["status"] == "accepted"
    assert workflows.nudged == ["payment-p-1"]


async def test_the_refunds_waiting_on_a_paid_payment_try_now() -> None:
    workflows = Workflows()
    answer = await nudge(Stored(payment("success"), ["r-1", "r-2"]), workflows)
    assert answer["status"] == "accepted"
    assert workflows.nudged == ["refund-r-1", "refund-r-2"]


async def test_nothing_to_wake_is_ignored() -> None:
    workflows = Workflows()
    assert (await nudge(Stored(payment("success")), workflows))["status"] == "ignored"
    assert (await nudge(Stored(payment("failure"), ["r-1"]), workflows))["status"] == "ignored"
    assert (await nudge(Stored(None), workflows))["status"] == "ignored"
    assert workflows.nudged == []
