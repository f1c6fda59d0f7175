"""What reaches the log stream: no card numbers, secrets or API key secrets, at any depth.

Logging is configured as a process does it (``configure_logging``) and the rendered stderr is
inspected, for structlog loggers, stdlib loggers (uvicorn's access log) and exceptions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote_plus

import pytest
import structlog

from payments.card_data import contains_card_number
from payments.config import LogSettings
from payments.logging import (
    CARD_NUMBER_REDACTED,
    MAX_DEPTH,
    REDACTED,
    TOO_DEEP,
    UNLOGGABLE,
    configure_logging,
    redact,
)

CARDS = ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117"]
API_KEY_ID = "psk_0123456789ab"
API_KEY_SECRET = "Zq3-k_9XyLmN0pQrStUvWxYz0123456789abcdEFGHI"
API_KEY = f"{API_KEY_ID}_{API_KEY_SECRET}"
SECRETS = ["tok_vaulted_7f3a9c", "sk_live_bearer_51x", "session=s3cr3t-cookie", API_KEY_SECRET]

ReadLog = Callable[[], str]


def _configure(json_output: bool) -> None:
    # LogSettings.json_output has the alias LOG_JSON (its environment variable).
    settings = LogSettings.model_validate({"LOG_JSON": json_output})
    assert settings.json_output is json_output
    configure_logging(settings, process="test")


@pytest.fixture
def log_output(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[bool], ReadLog]]:
    """Configure logging onto the captured stderr; give back a reader; restore afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_structlog = structlog.get_config()
    chatty = ("aiokafka", "kafka", "httpx", "urllib3", "braintree")
    saved_levels = {name: logging.getLogger(name).level for name in chatty}

    def configure(json_output: bool = True) -> ReadLog:
        _configure(json_output)
        capsys.readouterr()
        return lambda: capsys.readouterr().err

    yield configure

    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    structlog.configure(**saved_structlog)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)
    structlog.contextvars.unbind_contextvars("process")


def _records(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def _assert_clean(output: str) -> None:
    for card in CARDS:
        for form in (card, card[:4] + " " + card[4:8], card[:4] + "-" + card[4:8]):
            assert form not in output
    assert not contains_card_number(output)
    assert not contains_card_number(unquote_plus(output))
    for secret in SECRETS:
        assert secret not in output


def test_nested_structures_from_structlog(log_output: Callable[[bool], ReadLog]) -> None:
    read = log_output(True)
    structlog.get_logger("payments.test").info(
        "payment.created",
        payment_id="pay_8c1d",
        amount="49.99",
        rate="1.0912345678901234",
        request={
            "attempts": [
                {
                    "payment_token": SECRETS[0],
                    "Authorization": f"Bearer {SECRETS[1]}",
                    "note": f"customer typed {CARDS[0]} in the note",
                    "Set-Cookie": SECRETS[2],
                    "details": {"x-api-key": API_KEY, "plain": 5555555555554444},
                },
                (f"{CARDS[2]}",),
                {"shipping": "express"},
            ],
            "header": f"X-Api-Key: {API_KEY}",
            CARDS[3]: "a card number as a key",
        },
        tags={"vip", f"card {CARDS[1]}"},
    )
    output = read()
    _assert_clean(output)
    [record] = _records(output)
    assert record["event"] == "payment.created"
    assert record["payment_id"] == "pay_8c1d"
    assert record["amount"] == "49.99"
    assert record["rate"] == "1.0912345678901234"
    attempt = record["request"]["attempts"][0]
    assert attempt["payment_token"] == REDACTED
    assert attempt["Authorization"] == REDACTED
    assert attempt["Set-Cookie"] == REDACTED
    assert attempt["note"] == f"customer typed {CARD_NUMBER_REDACTED} in the note"
    assert attempt["details"] == {"x-api-key": REDACTED, "plain": CARD_NUMBER_REDACTED}
    assert record["request"]["attempts"][1] == [CARD_NUMBER_REDACTED]
    assert record["request"]["attempts"][2] == {"shipping": "express"}
    assert record["request"]["header"] == f"X-Api-Key: {API_KEY_ID}_[redacted]"
    assert record["request"][CARD_NUMBER_REDACTED] == "a card number as a key"
    assert sorted(record["tags"]) == [f"card {CARD_NUMBER_REDACTED}", "vip"]


def test_innocent_numbers_stay(log_output: Callable[[bool], ReadLog]) -> None:
    read = log_output(True)
    structlog.get_logger().info(
        "numbers",
        amount_minor=4999,
        order_ref=1234567812345678,  # 16 digits, Luhn-invalid: not a card number
        rate=1.0912345678901234,
        created="2026-01-15T10:30:00Z",
    )
    [record] = _records(read())
    assert record["amount_minor"] == 4999
    assert record["order_ref"] == 1234567812345678
    assert record["rate"] == 1.0912345678901234
    assert record["created"] == "2026-01-15T10:30:00Z"


def test_stdlib_access_log_with_the_path_in_args(log_output: Callable[[bool], ReadLog]) -> None:
    read = log_output(True)
    access = logging.getLogger("uvicorn.access")
    access.setLevel(logging.INFO)
    line = '%s - "%s %s HTTP/%s" %d'
    access.info(
        line, "10.0.0.7:5123", "GET", f"/v1/cards/{CARDS[0]}/verify?ref=pay_8c1d", "1.1", 200
    )
    # uvicorn quotes the path: the spaces of a grouped number arrive as %20.
    access.info(line, "10.0.0.7:5123", "GET", "/v1/cards/5555%205555%205555%204444", "1.1", 404)
    access.info(
        line, "10.0.0.7:5123", "POST", f"/v1/pay?pan=3782+822463+10005&k={API_KEY}", "1.1", 400
    )
    output = read()
    _assert_clean(output)
    records = _records(output)
    assert [record["logger"] for record in records] == ["uvicorn.access"] * 3
    assert records[0]["event"] == (
        f'10.0.0.7:5123 - "GET /v1/cards/{CARD_NUMBER_REDACTED}/verify?ref=pay_8c1d HTTP/1.1" 200'
    )
    assert "/v1/cards/" in records[1]["event"]
    assert f"{API_KEY_ID}_[redacted]" in records[2]["event"]


def test_exceptions_are_rendered_then_masked(log_output: Callable[[bool], ReadLog]) -> None:
    read = log_output(True)
    log = structlog.get_logger("payments.test")
    try:
        raise ValueError(f"gateway refused card {CARDS[0]} for pay_8c1d")
    except ValueError:
        log.exception("charge.failed", payment_id="pay_8c1d")
    try:
        try:
            raise KeyError(f"token {API_KEY}")
        except KeyError as cause:
            raise RuntimeError(f"lookup of {CARDS[1]} failed") from cause
    except RuntimeError:
        logging.getLogger("temporalio.worker").exception("activity failed for %s", CARDS[2])
    output = read()
    _assert_clean(output)
    structlog_record, stdlib_record = _records(output)
    [rendered] = structlog_record["exception"]
    assert rendered["exc_type"] == "ValueError"
    assert rendered["exc_value"] == f"gateway refused card {CARD_NUMBER_REDACTED} for pay_8c1d"
    assert rendered["frames"][-1]["name"] == "test_exceptions_are_rendered_then_masked"
    assert stdlib_record["event"] == f"activity failed for {CARD_NUMBER_REDACTED}"
    assert [e["exc_type"] for e in stdlib_record["exception"]] == ["RuntimeError", "KeyError"]


def test_console_output_masks_tracebacks_too(log_output: Callable[[bool], ReadLog]) -> None:
    read = log_output(False)
    try:
        raise ValueError(f"card {CARDS[0]}")
    except ValueError:
        structlog.get_logger().exception("failed", token=SECRETS[0], note=CARDS[1])
    output = read()
    _assert_clean(output)
    assert "Traceback (most recent call last)" in output
    assert f"ValueError: card {CARD_NUMBER_REDACTED}" in output


def test_exception_objects_and_other_values_are_masked(
    log_output: Callable[[bool], ReadLog],
) -> None:
    read = log_output(True)
    structlog.get_logger().warning(
        "odd values", error=ValueError(f"card {CARDS[0]}"), raw=f"pan={CARDS[1]}".encode()
    )
    output = read()
    _assert_clean(output)
    [record] = _records(output)
    assert record["error"] == f"ValueError('card {CARD_NUMBER_REDACTED}')"


class _Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_redaction_never_raises(log_output: Callable[[bool], ReadLog]) -> None:
    read = log_output(True)
    cyclic: list[object] = [CARDS[0]]
    cyclic.append(cyclic)
    structlog.get_logger().info(
        "awkward", thing=_Unprintable(), cyclic=cyclic, payment_id="pay_8c1d"
    )
    output = read()
    _assert_clean(output)
    [record] = _records(output)
    assert record["thing"] == UNLOGGABLE
    assert record["payment_id"] == "pay_8c1d"
    assert record["cyclic"][0] == CARD_NUMBER_REDACTED
    depth = 0
    node: Any = record["cyclic"]
    while isinstance(node, list):
        node, depth = node[-1], depth + 1
    assert node == TOO_DEEP
    assert depth == MAX_DEPTH


@pytest.mark.parametrize(
    "key",
    [
        "payment_token",
        "PAYMENT_TOKEN",
        "payment_method_token",
        "token_ciphertext",
        "Authorization",
        "Cookie",
        "set-cookie",
        "X-Api-Key",
        "api_key",
        "client_secret",
        "access_token",
        "private_key",
        "password",
        "sasl_password",
        "cvv",
    ],
)
def test_sensitive_keys_at_any_depth(key: str) -> None:
    event = redact(None, "info", {"event": "e", "outer": [{"inner": {key: {"any": "thing"}}}]})
    assert event["outer"] == [{"inner": {key: REDACTED}}]
    assert redact(None, "info", {"event": "e", key: "value"})[key] == REDACTED


def test_redact_does_not_modify_the_callers_values() -> None:
    payload = {"payment_token": "tok", "note": CARDS[0], "items": [CARDS[1]]}
    redact(None, "info", {"event": "e", "payload": payload})
    assert payload == {"payment_token": "tok", "note": CARDS[0], "items": [CARDS[1]]}


def test_redact_leaves_the_formatter_meta_keys_alone() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "msg", None, None)
    event = redact(None, "info", {"event": CARDS[0], "_record": record, "_from_structlog": False})
    assert event["_record"] is record
    assert event["_from_structlog"] is False
    assert event["event"] == CARD_NUMBER_REDACTED
