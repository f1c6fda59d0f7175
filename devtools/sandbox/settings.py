"""The sandbox's own settings (``SANDBOX_*``): where ``python -m devtools.sandbox`` listens and how
its simulated gateway behaves. The service never reads them: it finds a local gateway at
``BRAINTREE_LOCAL_HOST``/``BRAINTREE_LOCAL_PORT``, which is where ``make run`` starts this one."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class SandboxSettings(BaseSettings):
    """The Braintree-compatible sandbox server (development and tests only)."""

    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8090
    # A submitted transaction moves to settling, then settled, this many seconds later.
    settle_after_seconds: float = 5.0
    # A bank transfer (SEPA, US bank account) waits in settlement_pending this long, then is
    # settled (or settlement_declined for amounts 4001.00-5000.99).
    bank_settle_after_seconds: float = 20.0
    # Where the sandbox POSTs Braintree-style webhooks (transaction_settled,
    # transaction_settlement_declined) when a transaction settles by itself; None: no webhooks.
    webhook_url: str | None = None
