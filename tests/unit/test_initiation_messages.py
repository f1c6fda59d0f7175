"""One payment_initiation message: started, or rejected for good (then dead-lettered), or an
infrastructure error that the consumer retries. The real service and repositories on SQLite;
the workflow starter and the Order Service are fakes (what they answer is the point)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError
from sqlalchemy.exc import OperationalError

from payments.config import AuthSettings, DatabaseSettings, PolicySettings
from payments.contracts import PaymentRequest, PaymentSnapshot, RefundSnapshot
from payments.db.database import Database
from payments.db.engine import create_db_engine
from payments.db.migrate import upgrade
from payments.errors import NotSent
from payments.events.dead_letters import masked
from payments.events.initiation import MessageRef, Rejection, handle_initiation
from payments.money import Money
from payments.orders.client import Order, OrderStatus, PaymentResult
from payments.service import PaymentService
from tests.support.requests import PAYMENT_BODY
from tests.support.rows import add_saved_method
from workers.consumer import is_transient

REF = MessageRef("payment_initiation", 0, 7)
CARD = "4111111111111111"


@dataclass
class RecordingStarter:
    started: list[PaymentRequest] = field(default_factory=list)
    down: bool = False

    async def start_payment(
        self, request: PaymentRequest, *, wait_seconds: float | None = None
    ) -> PaymentSnapshot | None:
        if self.down:
            raise NotSent("Temporal is not reachable")
        self.started.append(request)
        return None

    async def start_refund(
        self,
        refund_id: str,
        payment_id: str,
        *,
        created_at: datetime,
        restart: bool = False,
        wait_seconds: float | None = None,
    ) -> RefundSnapshot | None:
        raise AssertionError("no refunds here")

    async def exists(self, workflow_id: str) -> bool:
        return False


@dataclass
class PaidOrders:
    """An Order Service whose orders are all paid already."""

    async def get_order(self, order_id: str) -> Order | None:
        return Order(order_id, "user-1", OrderStatus.PAID, Money(1000, "USD"))

    async def record_payment(
        self, order_id: str, payment_id: str, payment_status: PaymentResult, event_id: str
    ) -> None:
        raise AssertionError("not called here")


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Database, RecordingStarter]:
    url = f"sqlite:///{tmp_path / 'payments.db'}"
    upgrade(url)
    db = Database(create_db_engine(DatabaseSettings(url=url)))
    db.access.ensure_merchant("acme")
    return db, RecordingStarter()


def service(parts: tuple[Database, RecordingStarter], orders: object = None) -> PaymentService:
    db, starter = parts
    return PaymentService(
        db,
        starter,
        PolicySettings(),
        AuthSettings(),
        orders,  # type: ignore[arg-type]
    )


def message(**overrides: object) -> bytes:
    body: dict[str, object] = {"merchant_id": "acme", "idempotency_key": "msg-1", **PAYMENT_BODY}
    body.update(overrides)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


async def handle(
    parts: tuple[Database, RecordingStarter],
    value: bytes | None,
    orders: object = None,
) -> str | Rejection:
    return await handle_initiation(service(parts, orders), REF, value, default_merchant_id="acme")


async def test_a_good_message_starts_one_payment_and_a_redelivery_nothing_new(
    parts: tuple[Database, RecordingStarter],
) -> None:
    first = await handle(parts, message())
    again = await handle(parts, message())
    assert isinstance(first, str) and first == again
    assert [r.payment_id for r in parts[1].started] == [first, first]  # restart is a no-op
    stored = parts[0].payments.get(first)
    assert stored is not None and stored.merchant_id == "acme"
    assert stored.gateway_order_id == "acme:order-1"


async def test_a_message_without_merchant_goes_to_the_default_one(
    parts: tuple[Database, RecordingStarter],
) -> None:
    payment_id = await handle(parts, message(merchant_id=...))
    assert isinstance(payment_id, str)
    stored = parts[0].payments.get(payment_id)
    assert stored is not None and stored.merchant_id == "acme"


@pytest.mark.parametrize(
    ("value", "error_type"),
    [
        (None, "null_message"),
        (b"\xff\xfe", "not_json"),
        (b"{not json", "not_json"),
        (b"[1, 2]", "invalid_fields"),
        (b"null", "invalid_fields"),
        (message(user_id=None), "invalid_fields"),
        (message(idempotency_key=...), "invalid_fields"),
        (message(amount="-1"), "invalid_amount"),
        (message(amount="1e3"), "invalid_amount"),
        (message(amount="1_000"), "invalid_amount"),
        (message(amount="\u0661\u0660"), "invalid_amount"),  # Arabic-Indic digits
        (message(currency="XXX"), "unsupported_currency"),
        (message(merchant_id="nobody"), "unknown_merchant"),
        (message(merchant_id="a:b"), "invalid_fields"),
        (message(payment_token=CARD), "card_number_not_allowed"),
        (
            message(order_id=f"order {CARD[:4]} {CARD[4:8]} {CARD[8:12]} {CARD[12:]}"),
            "card_number_not_allowed",
        ),
        (f"garbage {CARD}".encode(), "card_number_not_allowed"),
        (message(payment_token="abc\u0001def"), "invalid_fields"),
        (message(payment_token=None, payment_method_id="pm-unknown"), "invalid_request"),
        (message(retry=True), "invalid_request"),  # a nonce cannot be charged again
    ],
)
async def test_permanent_errors_are_rejections(
    parts: tuple[Database, RecordingStarter],
    value: bytes | None,
    error_type: str,
) -> None:
    outcome = await handle(parts, value)
    assert isinstance(outcome, Rejection), outcome
    assert outcome.error_type == error_type, outcome
    assert CARD not in outcome.message
    assert parts[1].started == []
    assert parts[0].payments.page().items == []


async def test_a_retrying_payment_charges_a_saved_method(
    parts: tuple[Database, RecordingStarter],
) -> None:
    method_id = add_saved_method(parts[0], "v2:x:y", merchant_id="acme")
    payment_id = await handle(
        parts, message(payment_token=None, payment_method_id=method_id, retry=True)
    )
    assert isinstance(payment_id, str), payment_id
    [started] = parts[1].started
    assert (started.payment_method_id, started.retry_soft_declines) == (method_id, True)


async def test_a_retry_without_a_saved_method_names_the_field(
    parts: tuple[Database, RecordingStarter],
) -> None:
    outcome = await handle(parts, message(retry=True))
    assert isinstance(outcome, Rejection)
    assert outcome.message.startswith("payment_method_id: "), outcome


async def test_a_conflicting_key_is_a_rejection(
    parts: tuple[Database, RecordingStarter],
) -> None:
    assert isinstance(await handle(parts, message()), str)
    outcome = await handle(parts, message(amount="1.00"))
    assert isinstance(outcome, Rejection) and outcome.error_type == "idempotency_key_reused"


async def test_an_order_already_paid_is_a_rejection(
    parts: tuple[Database, RecordingStarter],
) -> None:
    outcome = await handle(parts, message(amount=None, currency=None), orders=PaidOrders())
    assert isinstance(outcome, Rejection) and outcome.error_type == "conflict", outcome
    assert "paid" in outcome.message


async def test_infrastructure_errors_propagate_to_be_retried(
    parts: tuple[Database, RecordingStarter],
) -> None:
    parts[1].down = True
    with pytest.raises(Exception) as raised:
        await handle(parts, message())
    assert is_transient(raised.value)
    # Nothing was left behind: a retry later starts it from scratch.
    assert parts[0].payments.page().items == []
    parts[1].down = False
    assert isinstance(await handle(parts, message()), str)


def test_what_is_transient() -> None:
    assert is_transient(NotSent("down"))
    assert is_transient(OperationalError("SELECT 1", {}, Exception("connection refused")))
    assert is_transient(ConnectionResetError())
    assert is_transient(KafkaConnectionError("broker down"))
    assert not is_transient(ValueError("a bug"))
    assert not is_transient(KeyError("a bug"))


def test_dead_letters_mask_card_numbers() -> None:
    assert masked(None) == b""
    assert CARD.encode() not in masked(json.dumps({"payment_token": CARD}).encode())
    assert masked(b"\xff" + CARD.encode()).startswith(b"\xff")  # undecodable bytes kept
    assert CARD.encode() not in masked(b"\xff" + CARD.encode())
