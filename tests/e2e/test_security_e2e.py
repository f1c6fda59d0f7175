"""End to end, what makes the service safe to expose, on the real stack (SQLite and
PostgreSQL): idempotency as Stripe promises it, poison messages dead-lettered without stopping
intake, Temporal storing only ciphertext, and no card number anywhere — database, logs, Kafka
topics, Temporal's storage — whatever input it is pushed through."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from payments.card_data import luhn_valid
from payments.config import DatabaseSettings
from payments.db.engine import create_db_engine
from payments.events.closing import stop_consumer
from payments.events.topics import ALL_TOPICS, PAYMENT_INITIATION, PAYMENT_INITIATION_DLQ
from tests.e2e.conftest import Stack
from tests.e2e.test_payments_e2e import pay, payment_body, wait_status
from workflows.payment import FRAUD_VERDICTS
from workflows.search_attributes import FOLLOW_STATUS_PATCH, SEARCH_ATTRIBUTES
from workflows.steps import SHORT_STEPS_RUN_LOCALLY

pytestmark = pytest.mark.e2e


# --- idempotency -------------------------------------------------------------------------------
async def test_a_retry_after_success_gets_its_payment_whatever_changed(
    api: httpx.AsyncClient,
) -> None:
    saved = await api.post(
        "/payment-methods", json={"user_id": "user-42", "payment_token": "fake-valid-visa-nonce"}
    )
    assert saved.status_code == 201, saved.text
    method_id = saved.json()["payment_method_id"]
    body = payment_body(payment_token=None, payment_method_id=method_id)
    key = f"stripe-like-{uuid.uuid4()}"
    first = await api.post("/initiate-payment", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 202, first.text
    assert "Idempotent-Replayed" not in first.headers
    done = await wait_status(api, first.headers["Location"], "payment_status")
    assert done["payment_status"] == "success"
    # Since then the order was paid and the saved card deleted: a new request would be
    # refused (duplicate order, unknown method). The retry gets the payment it made.
    assert (await api.delete(f"/payment-methods/{method_id}")).status_code == 204
    refused = await api.post("/initiate-payment", json=body)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "payment_method_id"
    replay = await api.post("/initiate-payment", json=body, headers={"Idempotency-Key": key})
    assert replay.status_code == 202, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["payment_id"] == done["payment_id"]
    assert replay.json()["payment_status"] == "success"


async def test_idempotency_keys_are_per_merchant(
    api: httpx.AsyncClient, admin_api: httpx.AsyncClient, stack: Stack
) -> None:
    created = await admin_api.post(
        "/admin/api-keys", json={"merchant_id": f"other-{uuid.uuid4().hex[:6]}", "role": "checkout"}
    )
    assert created.status_code == 201, created.text
    key = f"shared-{uuid.uuid4()}"
    mine = await api.post(
        "/initiate-payment", json=payment_body(), headers={"Idempotency-Key": key}
    )
    async with httpx.AsyncClient(
        base_url=stack.endpoints.api_url,
        trust_env=False,
        timeout=30,
        headers={"Authorization": f"Bearer {created.json()['secret']}"},
    ) as other:
        # The same key, another body, another merchant: their own new payment, not a 422.
        theirs = await other.post(
            "/initiate-payment", json=payment_body(), headers={"Idempotency-Key": key}
        )
        assert theirs.status_code == 202, theirs.text
        assert "Idempotent-Replayed" not in theirs.headers
        assert theirs.json()["payment_id"] != mine.json()["payment_id"]
        # Neither merchant can see the other's payment.
        assert (await other.get(mine.headers["Location"])).status_code == 404
        assert (await api.get(theirs.headers["Location"])).status_code == 404
        done = await wait_status(other, theirs.headers["Location"], "payment_status")
        assert done["payment_status"] == "success"
        assert done["gateway_order_id"] == f"{done['merchant_id']}:{done['order_id']}"


# --- poison messages ---------------------------------------------------------------------------
async def _produce(stack: Stack, key: bytes, values: Sequence[bytes | None]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(stack.topic(PAYMENT_INITIATION), value, key=key)
    finally:
        await producer.stop()


async def read_topic(stack: Stack, topic: str, *, seconds: float = 3.0) -> list[Any]:
    """Every message of ``topic`` from the beginning (no group: reads all, every time)."""
    consumer = AIOKafkaConsumer(
        stack.topic(topic),
        bootstrap_servers=stack.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[Any] = []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                found.extend(messages)
    finally:
        await stop_consumer(consumer)
    return found


async def dead_letters(stack: Stack, **headers: str) -> list[Any]:
    """DLQ messages whose headers include ``headers`` (dots written as underscores)."""
    wanted = {k.replace("_", "."): v for k, v in headers.items()}
    matching = []
    for message in await read_topic(stack, PAYMENT_INITIATION_DLQ, seconds=1.5):
        have = {k: v.decode() for k, v in message.headers or ()}
        if all(have.get(k) == v for k, v in wanted.items()):
            matching.append(message)
    return matching


async def test_a_poison_message_is_dead_lettered_and_intake_goes_on(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    good = {
        **payment_body(),
        "idempotency_key": f"msg-{uuid.uuid4()}",
        "merchant_id": "dev-merchant",
    }
    conflicting = {**good, "amount": "1.00"}  # same key, another body: can never succeed
    after = {
        **payment_body(),
        "idempotency_key": f"msg-{uuid.uuid4()}",
        "merchant_id": "dev-merchant",
    }
    # One partition (one key): the good message behind the bad one must not wait forever.
    await _produce(
        stack, b"one-partition", [json.dumps(m).encode() for m in (good, conflicting, after)]
    )
    for body in (good, after):
        deadline = time.monotonic() + 60
        while True:
            listed = (await api.get("/payments", params={"order_id": body["order_id"]})).json()
            if listed["items"] and listed["items"][0]["payment_status"] == "success":
                break
            assert time.monotonic() < deadline, f"{body['order_id']} never succeeded: {listed}"
            await asyncio.sleep(0.2)
        assert len(listed["items"]) == 1  # one payment each, the conflicting one made none

    deadline = time.monotonic() + 30
    while not (found := await dead_letters(stack, dlq_error_type="idempotency_key_reused")):
        assert time.monotonic() < deadline, "the conflicting message never reached the DLQ"
    bad = [m for m in found if json.loads(m.value).get("amount") == "1.00"]
    assert len(bad) == 1
    headers = {k: v.decode() for k, v in bad[0].headers}
    assert headers["dlq.original.topic"] == stack.topic(PAYMENT_INITIATION)
    assert int(headers["dlq.original.offset"]) >= 0 and headers["dlq.original.partition"]
    assert "Idempotency-Key" in headers["dlq.error.message"]
    assert bad[0].key == b"one-partition"


def random_card_number(prefix: str = "4") -> str:
    """A fresh Luhn-valid 16-digit number (not a test card any other test uses)."""
    while True:
        digits = prefix + "".join(random.choice("0123456789") for _ in range(15 - len(prefix)))
        for check in "0123456789":
            if luhn_valid(digits + check):
                return digits + check


@pytest.mark.parametrize(
    ("case", "expected_type"),
    [
        ("not_json", "not_json"),
        ("null_value", "null_message"),
        ("null_field", "invalid_fields"),
        ("no_idempotency_key", "invalid_fields"),
        ("invalid_amount", "invalid_amount"),
        ("unknown_merchant", "unknown_merchant"),
        ("card_number", "card_number_not_allowed"),
    ],
)
async def test_every_permanent_error_is_dead_lettered(
    api: httpx.AsyncClient, stack: Stack, case: str, expected_type: str
) -> None:
    marker = uuid.uuid4().hex
    body: dict[str, Any] = {
        **payment_body(order_id=f"order-{marker}"),
        "idempotency_key": f"msg-{marker}",
        "merchant_id": "dev-merchant",
    }
    card = random_card_number()
    value: bytes | None
    if case == "not_json":
        value = f"not json {marker}".encode()
    elif case == "null_value":
        value = None
    else:
        if case == "null_field":
            body["user_id"] = None
        elif case == "no_idempotency_key":
            del body["idempotency_key"]
        elif case == "invalid_amount":
            body["amount"] = "-1.00"
        elif case == "unknown_merchant":
            body["merchant_id"] = f"nobody-{marker[:8]}"
        elif case == "card_number":
            body["payment_token"] = card
        value = json.dumps(body).encode()
    key = f"poison-{marker}".encode()
    await _produce(stack, key, [value])
    deadline = time.monotonic() + 30
    while True:
        found = [m for m in await dead_letters(stack) if m.key == key]
        if found:
            break
        assert time.monotonic() < deadline, f"{case}: nothing on the DLQ"
    [message] = found
    headers = {k: v.decode() for k, v in message.headers}
    assert headers["dlq.error.type"] == expected_type, headers
    assert card not in message.value.decode(errors="replace")
    assert card not in json.dumps(headers)
    if case == "card_number":
        assert "[card-number-redacted]" in message.value.decode()
    # Nothing was started for it.
    listed = (await api.get("/payments", params={"order_id": f"order-{marker}"})).json()
    assert listed["items"] == []


# --- Temporal stores only ciphertext ----------------------------------------------------------
async def _history(stack: Stack, workflow_id: str) -> dict[str, Any]:
    """The history as the Temporal server serves it (its UI's HTTP API): no codec involved."""
    assert stack.endpoints.temporal_ui_url is not None
    async with httpx.AsyncClient(
        base_url=stack.endpoints.temporal_ui_url, trust_env=False, timeout=10
    ) as ui:
        response = await ui.get(
            f"/api/v1/namespaces/{stack.settings.temporal.namespace}/workflows/"
            f"{workflow_id}/history"
        )
        response.raise_for_status()
        history: dict[str, Any] = response.json()
        return history


# The patches a payment of this version takes.
PATCHES = (SHORT_STEPS_RUN_LOCALLY, FOLLOW_STATUS_PATCH, FRAUD_VERDICTS)
# What the SDK's patch and local activity markers hold: ids, attempts and times.
SDK_MARKER_FIELDS = {
    "id",
    "deprecated",
    "seq",
    "attempt",
    "activity_id",
    "activity_type",
    "complete_time",
    "backoff",
    "original_schedule_time",
    "activation_index",
}


def _without_search_attributes(node: Any, found: list[dict[str, Any]]) -> Any:
    """The history's JSON without its search attributes (a run's start and its upserts),
    which go to ``found``: the server indexes them, so they are plain by design."""
    if isinstance(node, dict):
        kept = {}
        for key, value in node.items():
            if key == "searchAttributes":
                found.append(value["indexedFields"])
            else:
                kept[key] = _without_search_attributes(value, found)
        return kept
    if isinstance(node, list):
        return [_without_search_attributes(item, found) for item in node]
    return node


def _payloads(node: object) -> list[dict[str, Any]]:
    """Every payload ({metadata, data}) anywhere in a history's JSON."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "metadata" in node and "encoding" in (node.get("metadata") or {}):
            found.append(node)
        for value in node.values():
            found += _payloads(value)
    elif isinstance(node, list):
        for item in node:
            found += _payloads(item)
    return found


async def test_temporal_stores_only_ciphertext(
    api: httpx.AsyncClient, admin_api: httpx.AsyncClient, stack: Stack
) -> None:
    marker = uuid.uuid4().hex
    order_id, user_id, token = f"order-{marker}", f"user-{marker}", "fake-valid-visa-nonce"
    payment = await pay(
        api, order_id=order_id, user_id=user_id, amount="1987.65", payment_token=token
    )
    assert payment["payment_status"] == "success"
    searchable: list[dict[str, Any]] = []
    history = _without_search_attributes(
        await _history(stack, f"payment-{payment['payment_id']}"), searchable
    )
    text = json.dumps(history)
    for secret in (order_id, user_id, token, "1987.65", "198765", marker):
        assert secret not in text, secret
    # What the UI searches by is plain, as the server must index it: the documented ids,
    # statuses, method, currency and amount; never the token.
    indexed = {
        name: json.loads(base64.b64decode(value["data"]))
        for fields in searchable
        for name, value in fields.items()
    }
    # (TemporalChangeVersion: the patches the run took, upserted by the SDK.)
    allowed = {key.name for key in SEARCH_ATTRIBUTES} | {"TemporalChangeVersion"}
    assert set(indexed) <= allowed, indexed
    assert indexed["OrderId"] == order_id and indexed["AmountMinor"] == 198765
    assert indexed["PaymentStatus"] == "success"
    assert token not in json.dumps(searchable)
    payloads = _payloads(history)
    assert len(payloads) > 10
    # Every payload of ours is encrypted. The SDK writes its own markers in plain JSON: which
    # patches a run took, and when each local activity ran (its result is one of ours).
    markers = [p for p in payloads if base64.b64decode(p["metadata"]["encoding"]) == b"json/plain"]
    for payload in markers:
        value = json.loads(base64.b64decode(payload["data"]))
        if isinstance(value, dict):  # a patch's or a local activity's record
            assert set(value) <= SDK_MARKER_FIELDS, value
            assert value.get("id", SHORT_STEPS_RUN_LOCALLY) in PATCHES, value
        else:  # a patch id, or whether it is deprecated
            assert value in (*PATCHES, *([p] for p in PATCHES), True, False), value
    encodings = {base64.b64decode(p["metadata"]["encoding"]) for p in payloads}
    assert encodings == {b"binary/encrypted", b"json/plain"}, encodings

    # The codec endpoint (admins) gives them back, as the Temporal UI shows them.
    forbidden = await api.post("/codec/decode", json={"payloads": payloads})
    assert forbidden.status_code == 403
    decoded = await admin_api.post(
        "/codec/decode",
        json={"payloads": payloads},
        headers={"X-Namespace": stack.settings.temporal.namespace},
    )
    assert decoded.status_code == 200, decoded.text
    plain = b"".join(base64.b64decode(p["data"]) for p in decoded.json()["payloads"])
    assert order_id.encode() in plain and user_id.encode() in plain and b"198765" in plain

    # The dev server's UI is pointed at the codec endpoint.
    assert stack.endpoints.temporal_ui_url is not None
    async with httpx.AsyncClient(base_url=stack.endpoints.temporal_ui_url, trust_env=False) as ui:
        settings = (await ui.get("/api/v1/settings")).json()
    assert settings["Codec"]["Endpoint"] == f"{stack.endpoints.api_url}/codec"


# --- no card data anywhere ---------------------------------------------------------------------
def _variants(card: str) -> list[str]:
    groups = [card[i : i + 4] for i in range(0, 16, 4)]
    return [card, " ".join(groups), "-".join(groups)]


async def _push_everywhere(
    api: httpx.AsyncClient, admin_api: httpx.AsyncClient, stack: Stack, card: str
) -> None:
    """The card number through every input: each string field of each HTTP body, the path,
    the query, the Idempotency-Key header, a Kafka message's fields and the webhook body.
    Every request is refused with card_number_not_allowed."""
    paid = await pay(api)
    payment_id = paid["payment_id"]
    http: list[tuple[httpx.AsyncClient, str, str, dict[str, Any] | None]] = []
    initiate = payment_body()
    for field in ("order_id", "user_id", "amount", "payment_token"):
        http.append((api, "POST", "/initiate-payment", {**initiate, field: card}))
    http.append(
        (
            api,
            "POST",
            "/initiate-payment",
            {**initiate, "payment_token": None, "payment_method_id": card},
        )
    )
    http.append((api, "POST", "/initiate-payment", {**initiate, "extra": {"note": card}}))
    for field in ("payment_id", "amount", "reason"):
        http.append(
            (api, "POST", "/refund", {"payment_id": payment_id, "reason": "x", field: card})
        )
    http.append((api, "POST", "/verify-payment", {"payment_id": card}))
    for field in ("user_id", "payment_token"):
        http.append(
            (api, "POST", "/payment-methods", {"user_id": "u", "payment_token": "n", field: card})
        )
    http.append((admin_api, "PUT", "/exchange-rates/SEK/USD", {"rate": card}))
    http.append((admin_api, "POST", "/admin/api-keys", {"role": "checkout", "merchant_id": card}))
    http.append((admin_api, "POST", "/codec/decode", {"payloads": [{"data": card}]}))
    for variant in _variants(card):
        http.append((api, "GET", f"/payment/{variant}", None))
        http.append((api, "GET", f"/payments?order_id={variant}", None))
        http.append((api, "POST", f"/payment/{variant}/cancel", None))
    for client, method, path, body in http:
        response = await client.request(method, path, json=body)
        assert response.status_code == 422, (path, body, response.text)
        assert response.json()["error"]["type"] == "card_number_not_allowed"
    keyed = await api.post(
        "/initiate-payment", json=payment_body(), headers={"Idempotency-Key": f"k-{card}"}
    )
    assert keyed.status_code == 422 and keyed.json()["error"]["type"] == "card_number_not_allowed"
    webhook = await api.post(
        "/webhooks/braintree",
        content=f"bt_signature=abc&bt_payload={card}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert webhook.status_code == 422, webhook.text

    marker = uuid.uuid4().hex
    messages = []
    for field in ("payment_token", "order_id", "user_id", "payment_method_id", "idempotency_key"):
        message = {
            **payment_body(order_id=f"order-{marker}-{field}"),
            "idempotency_key": f"msg-{marker}-{field}",
            "merchant_id": "dev-merchant",
            field: card,
        }
        messages.append(json.dumps(message).encode())
    messages.append(f"not json but a card: {' '.join(_variants(card))}".encode())
    key = f"cards-{marker}".encode()
    await _produce(stack, key, messages)
    deadline = time.monotonic() + 30
    while len([m for m in await dead_letters(stack) if m.key == key]) < len(messages):
        assert time.monotonic() < deadline, "not every card-number message reached the DLQ"


async def _database_text(stack: Stack) -> bytes:
    url = stack.settings.database.url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    engine = create_db_engine(DatabaseSettings(url=url))
    dump: list[str] = []
    try:
        with engine.connect() as connection:
            for table in sa.inspect(connection).get_table_names():
                for row in connection.execute(sa.text(f'SELECT * FROM "{table}"')):  # noqa: S608
                    dump.append(repr(tuple(row)))
    finally:
        engine.dispose()
    return "\n".join(dump).encode()


async def test_a_card_number_leaves_no_trace(
    api: httpx.AsyncClient, admin_api: httpx.AsyncClient, stack: Stack
) -> None:
    card = random_card_number()
    await _push_everywhere(api, admin_api, stack, card)
    await asyncio.sleep(1.0)  # let every process flush its log lines

    needles = [v.encode() for v in _variants(card)]
    places: dict[str, bytes] = {
        "database": await _database_text(stack),
        "logs": stack.log_path.read_bytes(),
    }
    temporal_db = stack.settings.temporal.db_file
    places["temporal storage"] = b"".join(
        p.read_bytes() for p in (temporal_db, Path(f"{temporal_db}-wal")) if p.exists()
    )
    assert places["temporal storage"], "the Temporal dev server keeps its state in a file"
    # Every topic the service writes. (payment_initiation holds what the producer wrote,
    # until the topic's retention: that is the producer's message, not the service's.)
    for topic in ALL_TOPICS:
        if topic == PAYMENT_INITIATION:
            continue
        places[f"kafka {topic}"] = b"\n".join(
            (m.value or b"") + b" " + (m.key or b"") + b" " + repr(m.headers).encode()
            for m in await read_topic(stack, topic, seconds=2.0)
        )
    assert places[f"kafka {PAYMENT_INITIATION_DLQ}"], "the rejected messages were dead-lettered"
    for where, content in places.items():
        for needle in needles:
            assert needle not in content, f"the card number is in the {where}"
    # The refusals were logged, masked.
    assert b"[card-number-redacted]" in places["logs"]


async def test_tokens_with_control_characters_are_refused_at_once(api: httpx.AsyncClient) -> None:
    """The fuzzing finding: a token with control characters made the vault hang for 14 s and a
    payment retry its charge forever. Now both are a 422 before anything starts."""
    started = time.monotonic()
    vault = await api.post(
        "/payment-methods", json={"user_id": "user-42", "payment_token": "abc\u0001def"}
    )
    payment = await api.post("/initiate-payment", json=payment_body(payment_token="abc\u0001def"))
    assert time.monotonic() - started < 2
    for response in (vault, payment):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["type"] == "invalid_characters"


async def test_a_slow_vault_answers_in_bounded_time(api: httpx.AsyncClient, stack: Stack) -> None:
    """The gateway does not answer the vault for a while (503s): the request is answered
    202 pending within a few seconds, and the method becomes active once the gateway is back."""
    assert stack.endpoints.sandbox_url is not None
    async with httpx.AsyncClient(base_url=stack.endpoints.sandbox_url, trust_env=False) as sandbox:
        fault = {"operation": "payment_method", "kind": "status", "status_code": 503, "times": 3}
        (await sandbox.post("/_sandbox/faults", json=fault)).raise_for_status()
        try:
            started = time.monotonic()
            slow = await api.post(
                "/payment-methods",
                json={"user_id": "user-42", "payment_token": "fake-valid-mastercard-nonce"},
            )
            answered_after = time.monotonic() - started
        finally:
            pending_faults = (await sandbox.get("/_sandbox/faults")).json()
    assert slow.status_code == 202, slow.text
    assert answered_after < stack.settings.api.vault_wait_seconds + 3
    assert slow.json()["status"] == "pending" and slow.json()["type"] is None
    location = slow.headers["Location"]
    assert pending_faults, "the gateway was still failing when the API answered"
    deadline = time.monotonic() + 60
    while (current := (await api.get(location)).json())["status"] == "pending":
        assert time.monotonic() < deadline, current
        await asyncio.sleep(0.5)
    assert current["status"] == "active" and current["brand"] == "MasterCard", current
    listed = (await api.get("/users/user-42/payment-methods")).json()["items"]
    assert current["payment_method_id"] in [m["payment_method_id"] for m in listed]
