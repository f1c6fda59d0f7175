"""Workflow inputs recorded by earlier versions still decode, and still mean what they meant:
a payment or refund that has waited for days across a deployment keeps its policy."""

from __future__ import annotations

import json

from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from payments.config import PolicySettings
from payments.contracts import PaymentPolicy, PaymentRequest, RefundPolicy, RefundRequest


def decode(value: dict[str, object], as_type: type[object]) -> object:
    payload = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode("utf-8"))
    return DataConverter.default.payload_converter.from_payloads([payload], [as_type])[0]


def test_a_payment_started_before_the_policy_object_keeps_its_own_waits() -> None:
    earlier = {
        "payment_id": "p-1",
        "order_id": "o-1",
        "user_id": "u-1",
        "amount_minor": 1000,
        "currency": "USD",
        "payment_method": "bank_transfer",
        "payment_token": "nonce",
        "pending_check_schedule_seconds": [60.0, 120.0],
        "pending_deadline_seconds": 3600.0,
        "retry_soft_declines": True,
        "retry_schedule_seconds": [10.0],
    }
    request = decode(earlier, PaymentRequest)
    assert isinstance(request, PaymentRequest)
    assert request.waits_by() == PaymentPolicy(
        pending_check_schedule_seconds=[60.0, 120.0],
        pending_deadline_seconds=3600.0,
        retry_schedule_seconds=[10.0],
    )


def test_a_refund_started_before_the_policy_object_keeps_its_own_waits() -> None:
    earlier = {
        "refund_id": "r-1",
        "payment_id": "p-1",
        "settlement_poll_seconds": 30.0,
        "settlement_deadline_seconds": 600.0,
    }
    request = decode(earlier, RefundRequest)
    assert isinstance(request, RefundRequest)
    assert request.waits_by() == RefundPolicy(
        settlement_poll_seconds=30.0, settlement_deadline_seconds=600.0
    )
    assert request.waits_by().check_schedule() == [30.0]


def test_a_new_request_carries_the_settings_as_one_policy() -> None:
    settings = PolicySettings(
        pending_deadline_seconds=99.0, refund_settlement_check_schedule_seconds=[7.0, 70.0]
    )
    payment = PaymentRequest(
        payment_id="p-2",
        order_id="o-2",
        user_id="u-2",
        amount_minor=1,
        currency="USD",
        payment_method="credit_card",
        payment_token="nonce",
        policy=settings.payment_policy(),
    )
    assert payment.waits_by().pending_deadline_seconds == 99.0
    assert payment.waits_by().retry_schedule_seconds == settings.retry_schedule_seconds
    refund = RefundRequest(refund_id="r-2", payment_id="p-2", policy=settings.refund_policy())
    assert refund.waits_by().check_schedule() == [7.0, 70.0]
