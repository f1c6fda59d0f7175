"""Basic fraud check: an amount cap per currency and one live payment per order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import activity

from payments.config import PolicySettings
from payments.contracts import FraudCheckRequest, FraudDecision
from payments.money import Money, minor_units

if TYPE_CHECKING:
    from payments.db.repositories.payments import PaymentRepository


class FraudActivities:
    def __init__(self, payments: PaymentRepository, policy: PolicySettings) -> None:
        self._payments = payments
        self._policy = policy

    def amount_cap(self, currency: str) -> Money:
        major = self._policy.amount_caps_major.get(currency, self._policy.default_amount_cap_major)
        return Money(major * 10 ** minor_units(currency), currency)

    @activity.defn
    def check_fraud(self, request: FraudCheckRequest) -> FraudDecision:
        """Read-only, so safe to retry. Refusals are decisions, not errors."""
        cap = self.amount_cap(request.currency)
        if request.amount_minor > cap.minor:
            return FraudDecision(
                approved=False,
                reason="amount_exceeds_limit",
                message=f"amount exceeds the {cap} {cap.currency} limit for a single payment",
            )
        duplicate = self._payments.find_open_for_order(
            request.order_id, excluding=request.payment_id, merchant_id=request.merchant_id
        )
        if duplicate is not None:
            return FraudDecision(
                approved=False,
                reason="duplicate_order",
                message=(
                    f"order {request.order_id} already has a {duplicate.payment_status} "
                    f"payment ({duplicate.payment_id})"
                ),
            )
        return FraudDecision(approved=True)
