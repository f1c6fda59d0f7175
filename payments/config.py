"""Settings, read from the environment once per process by its composition root.

Every group reads its own prefix (``TEMPORAL_ADDRESS``, ``KAFKA_BOOTSTRAP_SERVERS``, ...), so the
README's configuration table is the list of fields below. Defaults are the embedded stack that
``make run`` starts on 127.0.0.1.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from payments.contracts import FraudPolicy, PaymentPolicy, ReconciliationRequest, RefundPolicy
from payments.money import MINOR_UNITS, Money, minor_units

DATA_DIR = Path(".data")
DEV_ONLY_PRIVATE_KEY = "development-only-private-key"  # the local sandbox's key
GATEWAY_TIMEOUT_MAX_SECONDS = 15


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATABASE_", extra="ignore")

    # SQLite file by default so that a fresh machine needs no database server;
    # postgresql+psycopg://user@host:5432/db in production.
    url: str = f"sqlite:///{DATA_DIR}/payments.db"
    echo: bool = False
    # PostgreSQL: give up on a connection attempt after this long.
    connect_timeout_seconds: int = 3
    # Connections kept open, and opened beyond those under load. Together they cover the
    # worker's activity threads (32), so that no activity waits for a connection while
    # another thread holds one idle in between.
    pool_size: int = 10
    max_overflow: int = 22
    # A thread that finds no free connection gives up after this long: less than a ledger
    # step's start-to-close (15 s), so the step fails its attempt and is retried, instead of
    # timing out while it waits.
    pool_timeout_seconds: float = 10.0


class TemporalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TEMPORAL_", extra="ignore")

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = "payments"
    ui_port: int = 8233
    # Where operators open the Temporal Web UI (links from the admin page); unset: the dev
    # server's, http://127.0.0.1:<ui_port>.
    ui_url: str | None = None
    # The dev server keeps its state here (WAL), so workflows survive a restart of `make run`.
    db_file: Path = DATA_DIR / "temporal.db"
    # AES-256-GCM keys of the payload codec: every workflow and activity input, result, query
    # answer and failure is encrypted before it reaches the Temporal server. Comma-separated
    # "key-id:base64url-key" entries, the newest (used for new payloads) first; older ones
    # still decode. Required against Braintree; generated into .data/ for local development.
    # TLS and API keys for the connection itself: Temporal's own variables (TEMPORAL_API_KEY,
    # TEMPORAL_TLS*, TEMPORAL_CONFIG_FILE/TEMPORAL_PROFILE), read by temporalio.envconfig.
    payload_keys: SecretStr | None = None
    dev_payload_keys_file: Path = DATA_DIR / "temporal-payload-keys.dev"
    # On SIGTERM/SIGINT the worker stops polling and gives the activities it is running this
    # long to finish (a charge waiting for the gateway's answer reports it instead of being
    # run again elsewhere); then it cancels what is left and exits. A gateway call ends
    # within the gateway activities' start-to-close (20 s), hence 25 s; the process manager's
    # grace period must be longer (docker-compose: stop_grace_period 30s).
    graceful_shutdown_seconds: float = Field(default=25.0, ge=0)
    # "host:port" where the worker serves Prometheus metrics: the Temporal SDK's own
    # (temporal_workflow_*, temporal_activity_*: counts, latencies, failures) and the
    # service's (payments_gateway_*). Unset: none.
    metrics_address: str | None = None


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    # Prepended to every topic name: lets several deployments (or test stacks) share one cluster.
    topic_prefix: str = ""
    # Off by default: the embedded broker (Tansu) refuses InitProducerId. Consumers dedupe by
    # event_id, so at-least-once delivery is enough; turn it on against Apache Kafka.
    enable_idempotence: bool = False
    consumer_group: str = "payment-service"
    # "host:port" where the consumer serves Prometheus metrics (lag, DLQ count). Unset: none.
    consumer_metrics_address: str | None = None
    partitions: int = 3
    replication_factor: int = 1
    # A payment_initiation message that fails for an infrastructure reason (database,
    # Temporal) is retried with jittered backoff up to this long between attempts.
    consumer_retry_max_seconds: float = 30.0
    # Connection security. Plain TCP by default (the embedded broker); SSL and SASL as the
    # cluster requires, e.g. SASL_SSL with SCRAM-SHA-512 against a managed Kafka.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # PEM files: the CA that signed the brokers' certificates (default: the system's), and a
    # client certificate and key for mutual TLS.
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


class GatewaySettings(BaseSettings):
    """The braintree SDK's configuration. ``environment=local`` targets the project's sandbox."""

    model_config = SettingsConfigDict(env_prefix="BRAINTREE_", extra="ignore")

    environment: Literal["local", "sandbox", "production"] = "local"
    merchant_id: str = "local-merchant"
    public_key: str = "local-public-key"
    private_key: SecretStr = SecretStr(DEV_ONLY_PRIVATE_KEY)
    # Where the local sandbox listens (environment=local only).
    local_host: str = "127.0.0.1"
    local_port: int = 8090
    # The SDK's HTTP timeout, per request. Bounded: the gateway activities' start-to-close
    # (workflows/options.py GATEWAY, 20 s) must leave room for it plus the activity's other
    # calls, or Temporal would abandon attempts before the SDK reports the timeout.
    timeout_seconds: int = Field(default=10, ge=1, le=GATEWAY_TIMEOUT_MAX_SECONDS)
    # Currency → Braintree merchant account that settles it (BRAINTREE_MERCHANT_ACCOUNTS, as
    # JSON). A sale goes to its currency's account; without one, to the merchant's default
    # account, which charges in that account's own currency. With environment=local every
    # currency gets "{merchant_id}-{CUR}", which the sandbox settles in that currency.
    merchant_accounts: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_dev_key_against_braintree(self) -> GatewaySettings:
        if self.environment != "local" and (
            self.private_key.get_secret_value() == DEV_ONLY_PRIVATE_KEY
        ):
            raise ValueError(
                "BRAINTREE_PRIVATE_KEY must be set when BRAINTREE_ENVIRONMENT is not 'local'"
            )
        if self.environment == "local" and not self.merchant_accounts:
            self.merchant_accounts = {c: f"{self.merchant_id}-{c}" for c in MINOR_UNITS}
        return self


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    # How long GET /readyz waits for each dependency.
    readiness_timeout_seconds: float = 2.0
    # Larger request bodies are refused (413) before they are read further.
    max_body_bytes: int = 64 * 1024
    # Requests per API key ("limits" notation: "100/second", "100/second;3000/minute").
    rate_limit: str = "100/second"
    # Requests with a missing or wrong key, per client address: slows down key guessing.
    unauthenticated_rate_limit: str = "20/second"
    # Where the counters live: memory:// (one API process) or e.g. redis://host:6379 to share
    # them between API replicas.
    rate_limit_storage_uri: str = "memory://"
    # Origins allowed to call the codec endpoint from a browser (the Temporal Web UI).
    cors_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8233", "http://localhost:8233"]
    )
    # POST /payment-methods waits this long for the gateway, then answers 202 (pending).
    vault_wait_seconds: float = 5.0
    # Webhook notifications older than this are refused (a replay of a captured one).
    webhook_max_age_seconds: float = 300.0
    # Signs the codec session cookie of the Temporal UI (POST /codec/session). Unset: a random
    # secret per API process (sessions end when it restarts; set it when several API
    # processes serve one address).
    session_secret: SecretStr | None = None


class AuthSettings(BaseSettings):
    """Merchants, API keys and idempotency keys."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    # The merchant of rows that existed before merchants did, and of payment_initiation
    # messages that name none.
    default_merchant_id: str = "default"
    # An Idempotency-Key is remembered this long; afterwards the same key starts a new
    # payment or refund (Stripe's 24 hours).
    idempotency_ttl_seconds: float = 24 * 3600
    # `make run` writes its development keys here ({"checkout": ..., "admin": ...}).
    dev_keys_file: Path = DATA_DIR / "dev-api-keys.json"


class FraudSettings(BaseSettings):
    """The fraud rules' thresholds, the learned score's, and how the step fails.

    Counts are of the user's (or the payment method's) payments of any status before this
    one, within the window; see README "Fraud rules" for what each rule does."""

    model_config = SettingsConfigDict(env_prefix="FRAUD_", extra="ignore")

    # Velocity of one user: more than N payments in the window → review / decline.
    user_10m_review_count: int = Field(default=10, ge=1)
    user_10m_decline_count: int = Field(default=30, ge=1)
    user_1h_review_count: int = Field(default=30, ge=1)
    user_24h_review_count: int = Field(default=100, ge=1)
    # One user paying more than this many times the single-payment cap in one currency
    # within 24 hours → review.
    user_24h_amount_review_caps: float = Field(default=3.0, gt=0)
    # Velocity of one payment method (its fingerprint): more than N payments in an hour →
    # review; used by more than N users in a day → review (a card passed around).
    fingerprint_1h_review_count: int = Field(default=5, ge=1)
    fingerprint_24h_users_review_count: int = Field(default=3, ge=1)
    # The same user, amount and method again within this many seconds → review; 0 turns
    # the rule off.
    repeat_window_seconds: float = Field(default=300, ge=0)
    # A user's first payment above this fraction of the single-payment cap → review.
    new_user_large_fraction: float = Field(default=0.25, gt=0)
    # The learned score (0-100) at or above which a payment goes to review, or is declined
    # (101: the model never declines on its own).
    model_review_score: int = Field(default=80, ge=0, le=101)
    model_decline_score: int = Field(default=101, ge=0, le=101)
    # The model file (JSON); unset: the one shipped with the service.
    model_path: Path | None = None
    # The fraud step (lookup, rules, score, with retries) ends within this; past it the
    # payment is approved without a verdict (fail_open) or declined (fail-closed).
    timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    fail_open: bool = True
    # A payment held for review is voided if no operator decides within this.
    review_deadline_seconds: float = Field(default=24 * 3600.0, gt=0, le=7 * 24 * 3600.0)

    @model_validator(mode="after")
    def _decline_above_review(self) -> FraudSettings:
        if self.user_10m_decline_count < self.user_10m_review_count:
            raise ValueError("FRAUD_USER_10M_DECLINE_COUNT is below FRAUD_USER_10M_REVIEW_COUNT")
        return self

    def policy(self) -> FraudPolicy:
        return FraudPolicy(
            timeout_seconds=self.timeout_seconds,
            fail_open=self.fail_open,
            review_deadline_seconds=self.review_deadline_seconds,
        )


class PolicySettings(BaseSettings):
    """Business rules: which currencies are accepted and the fraud caps."""

    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore")

    # Currencies the merchant has an account in: charged as presented. Any other ISO 4217
    # currency is charged in settlement_currency at the newest exchange rate (refused when
    # there is none, or it is older than max_rate_age_seconds).
    accepted_currencies: list[str] = Field(
        default_factory=lambda: ["USD", "EUR", "GBP", "CAD", "AUD", "JPY", "KWD", "CHF"]
    )
    settlement_currency: str = "USD"
    max_rate_age_seconds: float = 24 * 3600
    # Soft declines of payments initiated with "retry": true are charged again after these
    # delays (1 hour, 1 day, 3 days), while the payment stays pending.
    retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [3600.0, 86400.0, 3 * 86400.0]
    )
    # Largest single payment the basic fraud check lets through, in major units per currency;
    # currencies not listed use default_amount_cap_major.
    amount_caps_major: dict[str, int] = Field(
        default_factory=lambda: {"JPY": 1_500_000, "KWD": 3_000}
    )
    default_amount_cap_major: int = 10_000
    fraud: FraudSettings = Field(default_factory=FraudSettings)
    # A partial refund of an unsettled sale waits for settlement up to this long from its
    # creation, asking the gateway after these delays (the last repeats: hourly; a card sale
    # settles in the gateway's nightly batch) and at once on a settlement webhook.
    refund_settlement_check_schedule_seconds: list[float] = Field(
        default_factory=lambda: [10.0, 60.0, 300.0, 900.0, 3600.0]
    )
    refund_settlement_deadline_seconds: float = 7 * 24 * 3600
    # A payment the gateway has accepted but not settled (bank transfers) is checked again
    # on this schedule (seconds; the last step repeats), at once when a webhook, an event on
    # payment_status or POST /verify-payment says something changed, and ends as failure
    # ("settlement_timeout") after the deadline. Minutes, then hours, then days, as Kill
    # Bill's janitor does.
    pending_check_schedule_seconds: list[float] = Field(
        default_factory=lambda: [60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0]
    )
    pending_deadline_seconds: float = 14 * 24 * 3600
    # AES-256-GCM keys for vaulted gateway tokens at rest, in the format of
    # TEMPORAL_PAYLOAD_KEYS (newest first; older ones still decrypt). Required against
    # Braintree; generated into .data/ for local development.
    token_keys: SecretStr | None = None
    dev_token_keys_file: Path = DATA_DIR / "token-keys.dev"
    # The Fernet key of earlier versions: only read, to decrypt tokens saved before the key
    # ring (new tokens always use token_keys).
    token_encryption_key: SecretStr | None = None
    dev_token_key_file: Path = DATA_DIR / "token-encryption.dev.key"
    # An exchange rate that moves more than this (percent) from the pair's previous rate is
    # refused unless the request says "override": true (a typo must not reprice payments).
    rate_change_limit_percent: float = 10.0
    # Reconciliation (a Temporal Schedule): how often, and how old a non-terminal payment or
    # refund must be before it is looked at (younger ones are still in their workflow's hands).
    reconciliation_interval_seconds: float = 300
    reconciliation_min_age_seconds: float = 120
    # Open items are read a page at a time and reconciled a few at a time (each is a gateway
    # look-up or a Temporal query: the gateway and Temporal are spared bursts). The page
    # bounds a run's history (a pass continues as new after a few pages), hence the cap.
    reconciliation_page_size: int = Field(default=50, ge=1, le=100)
    reconciliation_concurrency: int = Field(default=10, ge=1, le=100)
    # A running payment checks the gateway on its own schedule; reconciliation tells it to
    # check only when that check is this late (its worker was down or overloaded).
    reconciliation_overdue_grace_seconds: float = Field(default=120, ge=0)

    def amount_cap(self, currency: str) -> Money:
        """The largest single payment the fraud rules let through in ``currency``."""
        major = self.amount_caps_major.get(currency, self.default_amount_cap_major)
        return Money(major * 10 ** minor_units(currency), currency)

    def payment_policy(self) -> PaymentPolicy:
        """What a payment workflow started now waits by (carried in its input)."""
        return PaymentPolicy(
            pending_check_schedule_seconds=list(self.pending_check_schedule_seconds),
            pending_deadline_seconds=self.pending_deadline_seconds,
            retry_schedule_seconds=list(self.retry_schedule_seconds),
            fraud=self.fraud.policy(),
        )

    def reconciliation_request(self) -> ReconciliationRequest:
        """What the reconciliation schedule starts each pass with."""
        return ReconciliationRequest(
            min_age_seconds=self.reconciliation_min_age_seconds,
            page_size=self.reconciliation_page_size,
            concurrency=self.reconciliation_concurrency,
            overdue_after_seconds=self.reconciliation_overdue_grace_seconds,
        )

    def refund_policy(self) -> RefundPolicy:
        """What a refund workflow started now waits by (carried in its input)."""
        return RefundPolicy(
            settlement_deadline_seconds=self.refund_settlement_deadline_seconds,
            settlement_check_schedule_seconds=list(self.refund_settlement_check_schedule_seconds),
        )


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOG_", extra="ignore", populate_by_name=True)

    level: str = "INFO"
    json_output: bool = Field(default=False, alias="LOG_JSON")


class TracingSettings(BaseSettings):
    """OpenTelemetry traces, exported over OTLP/HTTP; off unless an endpoint is set."""

    model_config = SettingsConfigDict(env_prefix="TRACING_", extra="ignore")

    # The collector's traces URL, e.g. http://otel-collector:4318/v1/traces.
    otlp_endpoint: str | None = None
    # Spans are sent in batches at most this far apart.
    export_interval_seconds: float = Field(default=5.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    # Defined at the end of this module; the lambda defers the name lookup.
    orders: OrderServiceSettings = Field(default_factory=lambda: OrderServiceSettings())


@lru_cache
def get_settings() -> Settings:
    """The process's settings. Only composition roots call this; everything else is given them."""
    return Settings()


class OrderServiceSettings(BaseSettings):
    """The Order Service (``payments.orders``). Unset URL: the service trusts the request's
    amount, and the ``payment_status`` events are the only order update."""

    model_config = SettingsConfigDict(env_prefix="ORDER_SERVICE_", extra="ignore")

    # e.g. http://127.0.0.1:8070 (``python -m devtools.order_service``). When set,
    # initiation takes amount and currency from the order and a terminal payment updates it.
    url: str | None = None
    # Per request to the Order Service (connect, read, write).
    timeout_seconds: float = 5.0

    @field_validator("url", mode="before")
    @classmethod
    def _blank_url_is_unset(cls, value: object) -> object:
        # ORDER_SERVICE_URL= (empty, as env files and compose leave it) means "not configured".
        if isinstance(value, str):
            value = value.strip().rstrip("/") or None
        if isinstance(value, str) and not value.startswith(("http://", "https://")):
            raise ValueError("ORDER_SERVICE_URL must start with http:// or https://")
        return value


# Settings' `orders` field names a class defined after it: resolve the annotation at import.
Settings.model_rebuild()
