"""The fraud step: look the payment method up, count, check the blocklist, score, decide.

Reads only (the workflow's next step, LedgerActivities.record_fraud, stores the verdict), so
it is safe to retry. Refusals are verdicts, not errors; so is a step that cannot decide in
time (fail open or closed). The rules are payments/fraud/rules.py; the learned score
payments/fraud/model.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from temporalio import activity

from payments.config import PolicySettings
from payments.contracts import FraudCheckRequest, FraudDecision, FraudReason, FraudVerdict
from payments.errors import GatewayUnavailable
from payments.fraud.countries import bin_country_mismatch
from payments.fraud.features import FraudFeatures
from payments.fraud.rules import LearnedOpinion, PaymentFacts, assess
from payments.gateway.types import PaymentMethodProfile
from payments.money import Money
from payments.vocabulary import FraudOutcome

if TYPE_CHECKING:
    from payments.db.database import Database
    from payments.db.repositories.fraud import OpenPayment
    from payments.fraud.model import LearnedScore

log = structlog.get_logger(__name__)

# What a payment refused by the fraud rules ends with (its failure_reason).
FRAUD_DECLINED = "fraud_declined"
DUPLICATE_ORDER = "duplicate_order"

# Looks a payment method up at the gateway without charging it; None when the gateway does
# not know it (the sale will refuse it too). GatewayActivities.describe_payment_method.
DescribeMethod = Callable[[FraudCheckRequest], PaymentMethodProfile | None]


class FraudActivities:
    def __init__(
        self,
        db: Database,
        policy: PolicySettings,
        *,
        describe: DescribeMethod,
        model: LearnedScore | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        # Attempts run here so that the step can answer at its deadline whatever they do.
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fraud-check")
        self._db = db
        self._policy = policy
        self._describe = describe
        self._model = model
        self._clock = clock

    @activity.defn
    def check_fraud(self, request: FraudCheckRequest) -> FraudDecision:
        """The verdict on one payment, with the rules that fired and the learned score.
        Bounded by ``request.timeout_seconds``: what is not decided by then (the gateway's
        look-up or the database hangs, or keeps failing) is decided by the policy, fail
        open or closed, and said so in the verdict. The step keeps this time itself, on the
        worker's clock: a verdict is the activity's result, recorded in the history, so a
        replay never decides again."""
        if request.timeout_seconds is None:  # runs from before verdicts: unbounded
            return self._decide(request)
        deadline = time.monotonic() + request.timeout_seconds
        wait = 0.1
        while (remaining := deadline - time.monotonic()) > 0:
            attempt = self._pool.submit(self._decide, request)
            try:
                return attempt.result(timeout=remaining)
            except FuturesTimeout:
                break  # the attempt goes on in its thread, bounded by its own timeouts
            except Exception as exc:  # the gateway or the database: tried again in time
                log.warning(
                    "fraud_check_attempt_failed",
                    payment_id=request.payment_id,
                    error=type(exc).__name__,
                    exc_info=not isinstance(exc, GatewayUnavailable),
                )
            time.sleep(min(wait, max(deadline - time.monotonic(), 0)))
            wait = min(wait * 2, 1.0)
        log.error(
            "fraud_check_timed_out",
            payment_id=request.payment_id,
            timeout_seconds=request.timeout_seconds,
            fail_open=request.fail_open,
        )
        return without_verdict(
            request.fail_open, f"no verdict within {request.timeout_seconds:g} s"
        )

    def _decide(self, request: FraudCheckRequest) -> FraudDecision:
        settings = self._policy.fraud
        amount = Money(request.amount_minor, request.currency)
        cap = self._policy.amount_cap(request.currency)
        # Two read transactions: what decides before the payment method is looked up, then
        # what needs its fingerprint and BIN (no transaction stays open across the look-up).
        with self._db.fraud.reads() as reads:
            this = reads.payment(request.payment_id)
            # A run from before merchants carries none: the payment's own.
            merchant_id = request.merchant_id or (this.merchant_id if this is not None else "")
            duplicate = reads.earlier_open_payment(
                request.order_id,
                this=this,
                payment_id=request.payment_id,
                merchant_id=merchant_id,
            )
            if duplicate is not None:
                return _duplicate_order(request.order_id, duplicate)
            blocked = reads.blocklisted(user_id=request.user_id, fingerprint=None, card_bin=None)
        # Declined whatever the payment method: not even looked up at the gateway.
        certain = bool(blocked) or amount.minor > cap.minor
        profile = None if certain or not request.payment_method else self._describe(request)
        now = self._clock()
        with self._db.fraud.reads() as reads:
            if profile is not None:
                blocked = reads.blocklisted(
                    user_id=request.user_id, fingerprint=profile.fingerprint, card_bin=profile.bin
                )
            velocity = reads.velocity(
                payment_id=request.payment_id,
                merchant_id=merchant_id,
                user_id=request.user_id,
                amount_minor=request.amount_minor,
                currency=request.currency,
                method=request.payment_method,
                fingerprint=profile.fingerprint if profile else None,
                now=now,
                repeat_window=timedelta(seconds=settings.repeat_window_seconds),
            )
        facts = PaymentFacts(
            amount=amount,
            cap=cap,
            user_id=request.user_id,
            user_10m=velocity.user_10m,
            user_1h=velocity.user_1h,
            user_24h=velocity.user_24h,
            user_24h_amount_minor=velocity.user_24h_amount_minor,
            user_is_new=velocity.user_is_new,
            repeats=velocity.repeats,
            fingerprint=profile.fingerprint if profile else None,
            fingerprint_1h=velocity.fingerprint_1h,
            fingerprint_24h_users=velocity.fingerprint_24h_users,
            card_bin=profile.bin if profile else None,
            blocklisted=[(entry.kind, entry.reason) for entry in blocked],
        )
        learned = None
        if self._model is not None:
            features = FraudFeatures(
                amount_major=float(amount.to_decimal()),
                currency=request.currency,
                method=request.payment_method,
                user_payments_10m=velocity.user_10m,
                user_payments_1h=velocity.user_1h,
                user_payments_24h=velocity.user_24h,
                fingerprint_payments_24h=velocity.fingerprint_24h,
                user_age_days=(
                    (now - velocity.first_payment_at).total_seconds() / 86400
                    if velocity.first_payment_at is not None
                    else 0.0
                ),
                hour_of_day=now.hour,
                bin_country_mismatch=bin_country_mismatch(
                    profile.country_of_issuance if profile else None, request.currency
                ),
            )
            learned = LearnedOpinion(self._model.score(features), self._model.version)
        verdict = assess(facts, settings, learned)
        log.info(
            "fraud_verdict",
            payment_id=request.payment_id,
            decision=verdict.decision,
            score=verdict.score,
            rules=[reason.rule for reason in verdict.reasons],
            model_score=verdict.model_score,
        )
        declined = verdict.decision == FraudOutcome.DECLINE
        return FraudDecision(
            approved=not declined,
            reason=FRAUD_DECLINED if declined else None,
            message=verdict.reasons[0].message if declined and verdict.reasons else None,
            verdict=verdict,
            fingerprint=profile.fingerprint if profile else None,
            card_bin=profile.bin if profile else None,
        )


def _duplicate_order(order_id: str, duplicate: OpenPayment) -> FraudDecision:
    """Not a fraud verdict: the order is being paid already."""
    message = (
        f"order {order_id} already has a {duplicate.payment_status} payment "
        f"({duplicate.payment_id})"
    )
    return FraudDecision(
        approved=False,
        reason=DUPLICATE_ORDER,
        message=message,
        verdict=FraudVerdict(FraudOutcome.DECLINE, 100, [FraudReason("duplicate_order", message)]),
    )


def without_verdict(fail_open: bool, why: str) -> FraudDecision:
    """The fraud step could not decide in time: approved (fail open) or declined (fail
    closed), as the policy says, with the reason kept in the verdict."""
    if fail_open:
        message = f"the fraud check did not answer ({why}); approved (fail open)"
        return FraudDecision(
            approved=True,
            verdict=FraudVerdict(
                FraudOutcome.APPROVE, 0, [FraudReason("fraud_check_unavailable", message)]
            ),
        )
    message = f"the fraud check did not answer ({why}); declined (fail closed)"
    return FraudDecision(
        approved=False,
        reason=FRAUD_DECLINED,
        message=message,
        verdict=FraudVerdict(
            FraudOutcome.DECLINE, 100, [FraudReason("fraud_check_unavailable", message)]
        ),
    )
