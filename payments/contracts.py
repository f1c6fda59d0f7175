"""Frozen dataclasses that cross the Temporal boundary (workflow and activity in/out).

Plain types only (str, int, bool, None) so that the default JSON converter round-trips them and
workflow code never imports SQLModel, pydantic or SDK types. New fields get defaults, so
histories recorded by an older version still decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from payments.gateway.types import InstrumentDetails
from payments.vocabulary import DeclineType, GatewayRefundOutcome, RefundMethod


@dataclass(frozen=True)
class PaymentPolicy:
    """What a payment workflow waits by, from ``PolicySettings`` when the payment starts (a
    deployment with other settings does not change a running payment)."""

    # The gateway accepted but has not settled (bank transfers): check again after these
    # delays (the last repeats) and give up after the deadline.
    pending_check_schedule_seconds: list[float]
    pending_deadline_seconds: float
    # Soft declines of a payment that asked for retries are charged again after these delays.
    retry_schedule_seconds: list[float]
    # How the fraud step is bounded and what a payment in review waits for. None in
    # histories of payments started before fraud review: FraudPolicy's defaults.
    fraud: FraudPolicy | None = None


@dataclass(frozen=True)
class FraudPolicy:
    """What the fraud step of a payment started now is held to (FraudSettings)."""

    # The whole step (rules, payment-method lookup, score) with its retries must end
    # within this; past it the payment goes on as ``fail_open`` says: approved without a
    # verdict (True) or declined (False).
    timeout_seconds: float = 5.0
    fail_open: bool = True
    # A payment held for review is voided when no operator has decided by then.
    review_deadline_seconds: float = 24 * 3600.0


@dataclass(frozen=True)
class RefundPolicy:
    """What a refund workflow waits by, from ``PolicySettings`` when the refund starts."""

    # A partial refund of a sale that has not settled yet waits for settlement, up to the
    # deadline (counted from the refund's creation): asked again after these delays (the
    # last repeats), and at once when a webhook says the sale settled.
    settlement_deadline_seconds: float
    settlement_check_schedule_seconds: list[float] = field(default_factory=list)
    # Only in inputs of refunds started before the schedule: one fixed interval.
    settlement_poll_seconds: float | None = None

    def check_schedule(self) -> list[float]:
        if self.settlement_check_schedule_seconds:
            return self.settlement_check_schedule_seconds
        return [self.settlement_poll_seconds or 3600.0]


@dataclass(frozen=True)
class SettlementWaitState:
    """Where a wait for settlement stands; carried into the next run of a workflow that
    continues as new, so that neither the deadline nor the schedule starts over."""

    deadline_at: str  # ISO 8601, UTC: absolute, whatever run is waiting
    checks: int = 0  # made so far, in every run: which step of the schedule comes next
    check_requested: bool = False  # a signal arrived that no check has answered yet


@dataclass(frozen=True)
class PaymentContinuation:
    """Where a payment's previous run left off when it continued as new (its history had
    grown long): waiting for an accepted sale to settle, or to retry a soft decline."""

    attempt: int
    # Waiting for settlement: the accepted sale and the wait's state.
    charge: ChargeResult | None = None
    settlement: SettlementWaitState | None = None
    # Waiting to retry: the soft decline (already recorded) and when to charge again.
    declined: PaymentOutcome | None = None
    retry_at: str | None = None  # ISO 8601, UTC


@dataclass(frozen=True)
class PaymentRequest:
    """What a client asked for: the input of PaymentWorkflow (id ``payment-{payment_id}``)."""

    payment_id: str
    order_id: str
    user_id: str
    amount_minor: int
    currency: str
    payment_method: str
    # A single-use gateway nonce, never a card number. Not logged. None when a vaulted
    # payment method is charged (payment_method_id); its token never enters the history.
    payment_token: str | None
    # Carried so that the workflow's first step can recreate the row exactly as the API
    # stored it (see PaymentService: a start whose answer was lost).
    idempotency_key: str | None = None
    request_fingerprint: str | None = None
    payment_method_id: str | None = None
    # Tell the Order Service the outcome (ORDER_SERVICE_URL configured at initiation).
    update_order_service: bool = False
    # Merchant-initiated payments may ask for soft declines to be charged again (durable
    # timers, policy.retry_schedule_seconds); hard declines never are.
    retry_soft_declines: bool = False
    # amount_minor/currency above are what the gateway charges; for a converted payment,
    # what the customer was shown and the rate (so the first step can recreate the row).
    presented_amount_minor: int | None = None
    presented_currency: str | None = None
    exchange_rate: str | None = None
    rate_as_of: str | None = None
    # Whose payment, and the order id the gateway knows its sale by. None in histories of
    # payments started before merchants existed: the default merchant, the bare order id.
    merchant_id: str | None = None
    gateway_order_id: str | None = None
    # None only in histories of payments started before the policy travelled as one object:
    # those carry it in the three fields below (read by ``waits_by``, never written).
    policy: PaymentPolicy | None = None
    pending_check_schedule_seconds: list[float] | None = None
    pending_deadline_seconds: float | None = None
    retry_schedule_seconds: list[float] | None = None
    # Set only by the workflow itself when it continues as new: where to pick up.
    continued: PaymentContinuation | None = None

    def waits_by(self) -> PaymentPolicy:
        if self.policy is not None:
            return self.policy
        return PaymentPolicy(
            pending_check_schedule_seconds=self.pending_check_schedule_seconds or [],
            pending_deadline_seconds=self.pending_deadline_seconds or 0.0,
            retry_schedule_seconds=self.retry_schedule_seconds or [],
        )


@dataclass(frozen=True)
class PaymentSnapshot:
    """A payment as stored after a change; what events are built from."""

    payment_id: str
    order_id: str
    user_id: str
    amount_minor: int
    currency: str
    status: str
    payment_method: str
    transaction_id: str | None
    processor_response_code: str | None
    failure_reason: str | None
    refunded_minor: int
    updated_at: str  # ISO 8601, UTC
    charged_minor: int | None = None
    charged_currency: str | None = None
    exchange_rate: str | None = None
    merchant_id: str | None = None
    # The fraud step's verdict; None before it (and for payments from before verdicts).
    fraud: FraudVerdict | None = None


@dataclass(frozen=True)
class FraudCheckRequest:
    payment_id: str
    order_id: str
    user_id: str
    amount_minor: int
    currency: str
    merchant_id: str | None = None  # None: the payment's own (histories from before merchants)
    # What pays: the fraud step looks the payment method up at the gateway (BIN, issuing
    # country, fingerprint) without charging it. Empty in histories from before.
    payment_method: str = ""
    payment_token: str | None = None
    payment_method_id: str | None = None
    # The step's bound and what a step past it decides (FraudPolicy). None: unbounded, as
    # in histories from before verdicts.
    timeout_seconds: float | None = None
    fail_open: bool = True


@dataclass(frozen=True)
class FraudReason:
    """One rule that fired: its stable id ("velocity_user_10m") and a sentence for people."""

    rule: str
    message: str


@dataclass(frozen=True)
class FraudVerdict:
    """What the fraud step decided about a payment, and why; stored, shown and announced."""

    decision: str  # payments.vocabulary.FraudOutcome: approve | review | decline
    score: int  # 0-100: the higher of the learned score and what the rules that fired say
    reasons: list[FraudReason] = field(default_factory=list)
    # The learned score alone and the model that gave it (None: not scored).
    model_score: int | None = None
    model_version: str | None = None


@dataclass(frozen=True)
class FraudDecision:
    approved: bool
    # The failure_reason when refused: "fraud_declined", "duplicate_order" (before verdicts:
    # "amount_exceeds_limit").
    reason: str | None = None
    message: str | None = None
    # None in histories from before verdicts (approve or refuse only).
    verdict: FraudVerdict | None = None
    # What the payment method was recognised by (kept on the payment for velocity rules).
    fingerprint: str | None = None
    card_bin: str | None = None

    @property
    def in_review(self) -> bool:
        return self.verdict is not None and self.verdict.decision == "review"


@dataclass(frozen=True)
class FraudRecord:
    """The fraud step's verdict, as the workflow has it, to store on the payment."""

    payment_id: str
    verdict: FraudVerdict
    fingerprint: str | None = None
    card_bin: str | None = None
    # Set while a payment is held for review: when it is voided unless decided (ISO 8601).
    review_deadline_at: str | None = None


@dataclass(frozen=True)
class ReviewDecision:
    """An operator's decision on a payment held for review (POST /admin/payments/{id}/review)."""

    decision: str  # approve | decline
    note: str = ""
    reviewed_by: str | None = None  # the admin key's id


@dataclass(frozen=True)
class HeldPayment:
    """A payment authorized at the gateway and held for review: captured or voided."""

    payment_id: str
    transaction_id: str


@dataclass(frozen=True)
class ReviewRecord:
    """An operator's decision, as the held payment's workflow accepted it, for its audit trail."""

    payment_id: str
    review: ReviewDecision


@dataclass(frozen=True)
class ChargeRequest:
    payment_id: str
    order_id: str
    user_id: str
    amount_minor: int
    currency: str
    payment_token: str | None
    payment_method_id: str | None = None
    # 1 for the first sale; each retry of a soft decline is a new sale with its own key.
    attempt: int = 1
    # The order id sent to the gateway (and searched after an unknown outcome); None: the
    # bare order_id (payments started before merchants existed).
    gateway_order_id: str | None = None
    # Authorize only, without submitting for settlement: a payment held for fraud review
    # is captured (or voided) once an operator decides.
    authorize_only: bool = False


@dataclass(frozen=True)
class ChargeResult:
    approved: bool
    transaction_id: str | None
    gateway_status: str | None
    processor_response_code: str | None
    failure_reason: str | None = None
    failure_message: str | None = None
    decline_type: DeclineType | None = None  # for processor declines
    instrument: InstrumentDetails | None = None


@dataclass(frozen=True)
class TransactionCheck:
    """The gateway's current view of a transaction (the pending payment's poll)."""

    transaction_id: str
    status: str
    processor_response_code: str | None = None


@dataclass(frozen=True)
class PaymentOutcome:
    """What the payment workflow records: its end, or progress while pending."""

    payment_id: str
    succeeded: bool
    transaction_id: str | None = None
    processor_response_code: str | None = None
    failure_reason: str | None = None
    failure_message: str | None = None
    gateway_status: str | None = None
    decline_type: DeclineType | None = None
    instrument: InstrumentDetails | None = None
    # True: not an end; the gateway accepted and settlement is awaited, or a soft decline
    # will be retried at next_retry_at.
    still_pending: bool = False
    attempts: int | None = None
    next_retry_at: str | None = None  # ISO 8601

    @classmethod
    def of_charge(cls, payment_id: str, charge: ChargeResult) -> PaymentOutcome:
        """What a charge's answer records: approved or declined, with what the gateway said."""
        return cls(
            payment_id=payment_id,
            succeeded=charge.approved,
            transaction_id=charge.transaction_id,
            processor_response_code=charge.processor_response_code,
            failure_reason=charge.failure_reason,
            failure_message=charge.failure_message,
            gateway_status=charge.gateway_status,
            decline_type=charge.decline_type,
            instrument=charge.instrument,
        )


@dataclass(frozen=True)
class RefundRequest:
    """Input of RefundWorkflow (id ``refund-{refund_id}``); the refund row already exists."""

    refund_id: str
    payment_id: str
    # None only in histories of refunds started before the policy travelled as one object:
    # those carry it in the two fields below (read by ``waits_by``, never written).
    policy: RefundPolicy | None = None
    settlement_poll_seconds: float | None = None
    settlement_deadline_seconds: float | None = None
    # When a wait for settlement gives up (ISO 8601, UTC): the refund's creation plus the
    # policy's deadline, so that a run started again by reconciliation keeps the first
    # run's deadline. None in histories of earlier refunds: from the wait's start.
    deadline_at: str | None = None
    # Set only by the workflow itself when it continues as new: the checked refund and its
    # wait for settlement.
    continued: RefundContinuation | None = None

    def waits_by(self) -> RefundPolicy:
        if self.policy is not None:
            return self.policy
        return RefundPolicy(
            settlement_poll_seconds=self.settlement_poll_seconds or 0.0,
            settlement_deadline_seconds=self.settlement_deadline_seconds or 0.0,
        )


@dataclass(frozen=True)
class RefundContinuation:
    plan: RefundPlan
    settlement: SettlementWaitState


@dataclass(frozen=True)
class RefundPlan:
    """The checked refund: what the gateway must be asked to do."""

    refund_id: str
    payment_id: str
    allowed: bool
    transaction_id: str | None
    amount_minor: int
    currency: str
    # True when this refund gives back the whole payment (nothing refunded before it).
    whole_payment: bool
    failure_reason: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class GatewayRefundRequest:
    refund_id: str
    transaction_id: str
    amount_minor: int
    currency: str
    whole_payment: bool


@dataclass(frozen=True)
class GatewayRefundResult:
    outcome: GatewayRefundOutcome
    gateway_transaction_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class RefundOutcome:
    refund_id: str
    succeeded: bool
    method: RefundMethod | None = None
    gateway_transaction_id: str | None = None
    failure_reason: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class RefundSnapshot:
    refund_id: str
    payment_id: str
    order_id: str
    user_id: str
    amount_minor: int
    currency: str
    status: str
    reason: str
    method: str | None
    gateway_transaction_id: str | None
    failure_reason: str | None
    payment_refunded_minor: int
    payment_amount_minor: int
    updated_at: str
    merchant_id: str | None = None


@dataclass(frozen=True)
class VaultRequest:
    payment_method_id: str
    user_id: str
    payment_token: str  # a nonce, single use
    merchant_id: str | None = None  # None: vaulted before merchants existed
    # The gateway token to vault under, chosen by the workflow: a retry finds what an earlier
    # attempt vaulted, and a method vaulted after the workflow gave up can be deleted. None:
    # the gateway chooses (vaults started before it existed).
    gateway_token: str | None = None


@dataclass(frozen=True)
class VaultResult:
    succeeded: bool
    payment_method_id: str
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class RemovePaymentMethodRequest:
    payment_method_id: str


@dataclass(frozen=True)
class ReconciliationRequest:
    """The input of ReconciliationWorkflow: the schedule's settings (PolicySettings
    reconciliation_*), and, in a run that continues a pass, where the pass stands."""

    min_age_seconds: float  # PolicySettings.reconciliation_min_age_seconds
    # Open items are read this many at a time (oldest first) and reconciled at most
    # ``concurrency`` at a time.
    page_size: int = 50
    concurrency: int = 10
    # A running payment is told to check the gateway only once its own next check is
    # this late (it checks by itself otherwise).
    overdue_after_seconds: float = 120.0
    resume: ReconciliationPass | None = None


@dataclass(frozen=True)
class ReconciliationPass:
    """A reconciliation pass as it carries on from one run to the next (continue-as-new):
    where it is and what it has found so far, so that its one report covers every run."""

    report_id: str
    started_at: str
    # Open items last changed before this (the pass's start less the minimum age).
    older_than: str
    kind: str = "payment"  # the items being paged through: "payment", then "refund"
    cursor: str | None = None  # after which item the next page starts
    checked_payments: int = 0
    checked_refunds: int = 0
    repaired: int = 0
    # A bounded selection (the report lists them); ``unlisted`` counts the others.
    findings: list[Finding] = field(default_factory=list)
    unlisted: int = 0


@dataclass(frozen=True)
class OpenItemsPageRequest:
    kind: str  # "payment" | "refund"
    older_than: str  # ISO 8601: last changed before this
    cursor: str | None  # None: from the oldest
    limit: int


@dataclass(frozen=True)
class OpenItemsPage:
    ids: list[str]
    cursor: str | None  # None: this was the last page


@dataclass(frozen=True)
class PaymentToReconcile:
    payment_id: str
    # The reconciliation's clock (ISO 8601), against which a running payment's next check
    # is overdue or not, and how late that check may be before the payment is nudged.
    as_of: str
    overdue_after_seconds: float


@dataclass(frozen=True)
class PurgeRequest:
    """Housekeeping after a reconciliation: delete expired idempotency keys, this many at most."""

    limit: int = 1000


@dataclass(frozen=True)
class OpenItems:
    payment_ids: list[str]
    refund_ids: list[str]


@dataclass(frozen=True)
class Finding:
    """One reconciled item: what was found, and what was done about it."""

    kind: str  # "payment" | "refund"
    id: str
    found: str
    action: str  # "none", "nudged", "recorded_success", "recorded_failure", "restarted", ...


@dataclass(frozen=True)
class PaymentReconciliation:
    finding: Finding
    # The payment as stored when reconciliation closed it: the workflow announces it (a
    # separate, retried step, so the announcement survives a failure after the repair).
    closed: PaymentSnapshot | None = None


@dataclass(frozen=True)
class ReconciliationReportData:
    report_id: str
    started_at: str
    finished_at: str
    findings: list[Finding]
    # The whole pass's counts when ``findings`` lists only some of it (None: count the
    # findings, as reports of a single run did).
    checked_payments: int | None = None
    checked_refunds: int | None = None
    repaired: int | None = None


@dataclass(frozen=True)
class OrderUpdate:
    order_id: str
    payment_id: str
    payment_status: str  # "success" | "failure"
    event_id: str
