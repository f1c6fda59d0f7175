"""Braintree-style webhooks from the sandbox: settlements the clock brought about, announced.

A background task (started in the app's lifespan when ``SANDBOX_WEBHOOK_URL`` is set) ticks
every ``tick_seconds``: it brings every transaction up to the clock, and for each one that
settled or had its settlement declined by itself since the last tick it POSTs
``application/x-www-form-urlencoded`` ``bt_signature`` and ``bt_payload`` to the URL, the way
Braintree does and ``braintree.WebhookTesting.sample_notification`` builds them:

- ``bt_payload`` is the base64 (76-character lines, as ``base64.encodebytes``) of a
  ``<notification>`` document with ``timestamp``, ``kind`` and the ``<subject>`` transaction;
- ``bt_signature`` is ``public_key|hex(hmac_sha1(key=sha1(private_key), msg=bt_payload))``,
  which the SDK's ``webhook_notification.parse`` verifies.

A receiver that is down or answers non-2xx is retried a few times with doubling delays, as
Braintree retries; every delivery and its attempts are kept for ``GET /_sandbox/webhooks``.
Payloads carry only what a transaction response carries (never a full card number).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import structlog

from devtools.sandbox.render import notification_fields
from devtools.sandbox.store import SandboxTransaction, TransactionStore
from devtools.sandbox.xml_codec import render_document

log = structlog.get_logger(__name__)

TICK_SECONDS = 0.5
DELIVERY_ATTEMPTS = 5
# Waits between attempts: 0.5, 1, 2, 4 s (a receiver restarting has ~7 s to come back).
FIRST_RETRY_DELAY_SECONDS = 0.5
DELIVERY_TIMEOUT_SECONDS = 5.0
DELIVERY_LOG_SIZE = 1000
# braintree.WebhookNotification.Kind values (the sandbox does not import braintree).
KIND_BY_STATUS = {
    "settled": "transaction_settled",
    "settlement_declined": "transaction_settlement_declined",
}


def sign_payload(public_key: str, private_key: str, payload: str) -> str:
    """Braintree's webhook signature of ``payload`` (the base64 text, as sent)."""
    # SHA-1 because that is Braintree's scheme (the SDK verifies exactly this).
    key = hashlib.sha1(private_key.encode()).digest()  # noqa: S324
    digest = hmac.new(key, payload.encode("ascii"), hashlib.sha1).hexdigest()
    return f"{public_key}|{digest}"


def encode_notification(kind: str, timestamp: datetime, tx: SandboxTransaction) -> str:
    document = render_document("notification", notification_fields(kind, timestamp, tx))
    return base64.encodebytes(document.encode("utf-8")).decode("ascii")


@dataclass(slots=True)
class Delivery:
    id: int
    kind: str
    transaction_id: str
    transaction_status: str
    url: str
    created_at: datetime
    bt_signature: str
    bt_payload: str
    attempts: list[dict[str, Any]] = field(default_factory=list)
    # pending → delivered | failed (every attempt failed)
    state: str = "pending"

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "transaction_id": self.transaction_id,
            "transaction_status": self.transaction_status,
            "url": self.url,
            "created_at": self.created_at.isoformat(),
            "state": self.state,
            "attempts": [dict(attempt) for attempt in self.attempts],
            "bt_signature": self.bt_signature,
            "bt_payload": self.bt_payload,
        }


class WebhookDispatcher:
    """Announces lazy settlements of ``store`` to ``url``. Run ``run()`` as a task; ``aclose()``
    stops the deliveries in flight."""

    def __init__(
        self,
        *,
        url: str,
        store: TransactionStore,
        public_key: str,
        private_key: str,
        clock: Callable[[], datetime],
        tick_seconds: float = TICK_SECONDS,
        attempts: int = DELIVERY_ATTEMPTS,
        first_retry_delay_seconds: float = FIRST_RETRY_DELAY_SECONDS,
    ) -> None:
        self.url = url
        self._store = store
        self._public_key = public_key
        self._private_key = private_key
        self._clock = clock
        self._tick_seconds = tick_seconds
        self._attempts = max(attempts, 1)
        self._first_retry_delay = first_retry_delay_seconds
        self.deliveries: deque[Delivery] = deque(maxlen=DELIVERY_LOG_SIZE)
        self._ids = itertools.count(1)
        self._in_flight: set[asyncio.Task[None]] = set()
        # trust_env=False: a developer's HTTP(S)_PROXY must not capture a local receiver.
        self._client = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_SECONDS, trust_env=False)

    async def run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:
                # A bug here must not silently end webhooks for the rest of the session.
                log.exception("sandbox_webhook_tick_failed")
            await asyncio.sleep(self._tick_seconds)

    def tick(self) -> None:
        """Queue a delivery for every transaction that settled by itself since the last tick."""
        for tx in self._store.take_settlements():
            delivery = self._delivery(tx)
            self.deliveries.append(delivery)
            self._spawn(self._deliver(delivery))

    async def aclose(self) -> None:
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self._client.aclose()

    def _delivery(self, tx: SandboxTransaction) -> Delivery:
        kind = KIND_BY_STATUS[tx.status]
        now = self._clock()
        payload = encode_notification(kind, now, tx)
        return Delivery(
            id=next(self._ids),
            kind=kind,
            transaction_id=tx.id,
            transaction_status=tx.status,
            url=self.url,
            created_at=now,
            bt_signature=sign_payload(self._public_key, self._private_key, payload),
            bt_payload=payload,
        )

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _deliver(self, delivery: Delivery) -> None:
        delay = self._first_retry_delay
        form = {"bt_signature": delivery.bt_signature, "bt_payload": delivery.bt_payload}
        for attempt in range(1, self._attempts + 1):
            record: dict[str, Any] = {"attempt": attempt, "at": self._clock().isoformat()}
            delivery.attempts.append(record)
            try:
                response = await self._client.post(delivery.url, data=form)
            except httpx.HTTPError as exc:
                # Refused, reset, timed out: the receiver may be restarting, so retry.
                record["error"] = type(exc).__name__
            else:
                record["status_code"] = response.status_code
                if response.is_success:
                    delivery.state = "delivered"
                    log.info(
                        "sandbox_webhook_delivered",
                        kind=delivery.kind,
                        transaction_id=delivery.transaction_id,
                        attempts=attempt,
                    )
                    return
            if attempt < self._attempts:
                await asyncio.sleep(delay)
                delay *= 2
        delivery.state = "failed"
        log.warning(
            "sandbox_webhook_failed",
            kind=delivery.kind,
            transaction_id=delivery.transaction_id,
            url=delivery.url,
            attempts=self._attempts,
            last=delivery.attempts[-1],
        )
