"""Failures that no retry can heal end the step at once, as results a customer sees: a request
the gateway rejects as malformed, and a saved payment method whose token does not decrypt."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from payments.crypto import TokenCipher
from payments.errors import ErrorTypes, GatewayAdapterBug
from payments.keyring import KeyRing, new_key_entry
from payments.vocabulary import VaultStatus
from tests.support.rows import add_saved_method
from tests.workflows.conftest import Harness, run_removal, run_vault
from tests.workflows.test_payment_workflow import request, run
from tests.workflows.test_refund_workflow import paid_payment, refund, reserve


async def vaulted_method(harness: Harness) -> str:
    method_id = str(uuid.uuid4())
    assert (await run_vault(harness, method_id, "fake-valid-visa-nonce")).succeeded
    return method_id


async def removal_error_type(harness: Harness, method_id: str) -> str | None:
    """Remove the saved method, which must fail: the type of the activity's error, raised as
    non-retryable at its first attempt (not after Temporal gave up retrying)."""
    with pytest.raises(WorkflowFailureError) as failed:
        await run_removal(harness, method_id)
    activity_error = failed.value.cause
    assert isinstance(activity_error, ActivityError)
    application_error = activity_error.cause
    assert isinstance(application_error, ApplicationError)
    assert activity_error.retry_state == RetryState.NON_RETRYABLE_FAILURE
    return application_error.type


# --- the gateway rejects the request as malformed ----------------------------------------------
async def test_rejected_charge_fails_the_payment_after_one_gateway_call(harness: Harness) -> None:
    harness.gateway.rejected = {"sale"}
    req = request()

    result = await run(harness, req)

    assert result.status == "failure"
    assert result.failure_reason == "invalid_request"
    assert harness.gateway.calls == [("sale", f"sale-{req.payment_id}")]
    stored = harness.db.payments.get(req.payment_id)
    assert stored is not None and stored.payment_status == "failure"


async def test_rejected_vault_is_a_refusal_recorded_on_the_pending_row(harness: Harness) -> None:
    harness.gateway.rejected = {"vault"}
    method_id = str(uuid.uuid4())
    # As the API writes it before vaulting.
    harness.db.payment_methods.add_pending(method_id, merchant_id="default", user_id="user-1")

    result = await run_vault(harness, method_id, "abc\u0001def")

    assert (result.succeeded, result.error_code) == (False, "invalid_request")
    assert [op for op, _ in harness.gateway.calls] == ["vault"]
    stored = harness.db.payment_methods.get(method_id)
    assert stored is not None
    assert (stored.status, stored.failure_code) == (VaultStatus.FAILED, "invalid_request")


async def test_rejected_refund_is_refused_not_retried(harness: Harness) -> None:
    payment_id = await paid_payment(harness)
    harness.gateway.rejected = {"void"}

    result = await refund(harness, payment_id, reserve(harness, payment_id, None))

    assert result.status == "failed"
    assert result.failure_reason == "gateway_refused"
    assert [op for op, _ in harness.gateway.calls].count("void") == 1


async def test_rejected_removal_fails_without_retrying(harness: Harness) -> None:
    method_id = await vaulted_method(harness)
    harness.gateway.rejected = {"delete_payment_method"}

    error_type = await removal_error_type(harness, method_id)

    assert error_type == ErrorTypes.GATEWAY_REQUEST_REJECTED
    assert [op for op, _ in harness.gateway.calls].count("delete_payment_method") == 1


# --- the saved method's token does not decrypt -------------------------------------------------
async def test_charge_with_a_token_of_a_retired_key_fails_without_a_gateway_call(
    harness: Harness,
) -> None:
    # Written with a key that is no longer in the ring.
    retired = TokenCipher(KeyRing.parse(new_key_entry("retired")))
    method_id = str(uuid.uuid4())
    ciphertext = retired.encrypt("token-of-the-gateway", payment_method_id=method_id)
    add_saved_method(harness.db, ciphertext, method_id=method_id)
    req = replace(request(), payment_token=None, payment_method_id=method_id)

    result = await run(harness, req)

    assert result.status == "failure"
    assert result.failure_reason == "payment_method_unreadable"
    assert harness.gateway.calls == []
    stored = harness.db.payments.get(req.payment_id)
    assert stored is not None and stored.failure_message is not None
    assert "token-of-the-gateway" not in stored.failure_message


async def test_token_copied_onto_another_method_does_not_pay(harness: Harness) -> None:
    original = await vaulted_method(harness)
    stored = harness.db.payment_methods.get(original)
    assert stored is not None and stored.token_ciphertext is not None
    copy = add_saved_method(harness.db, stored.token_ciphertext)
    harness.gateway.calls.clear()

    result = await run(harness, replace(request(), payment_token=None, payment_method_id=copy))

    assert (result.status, result.failure_reason) == ("failure", "payment_method_unreadable")
    assert harness.gateway.calls == []
    # The original row still pays with the same ciphertext.
    paid = await run(harness, replace(request(), payment_token=None, payment_method_id=original))
    assert paid.status == "success"


async def test_removal_of_an_unreadable_method_fails_without_retrying(harness: Harness) -> None:
    method_id = add_saved_method(harness.db, "v2:retired:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")

    error_type = await removal_error_type(harness, method_id)

    assert error_type == ErrorTypes.PAYMENT_METHOD_UNREADABLE
    assert harness.gateway.calls == []


# --- a bug in the gateway adapter ---------------------------------------------------------------
async def test_adapter_bug_fails_the_charge_at_its_first_attempt(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not retried as if the gateway were down: the attempt fails for good (the workflow
    fails, the payment stays pending for reconciliation and an operator)."""

    def broken_sale(**kwargs: object) -> None:
        harness.gateway.calls.append(("sale", "broken"))
        raise GatewayAdapterBug("braintree sale failed: KeyError: a bug in the gateway adapter")

    monkeypatch.setattr(harness.gateway, "sale", broken_sale)

    with pytest.raises(WorkflowFailureError) as failed:
        await run(harness, request())

    activity_error = failed.value.cause
    assert isinstance(activity_error, ActivityError)
    assert activity_error.retry_state == RetryState.NON_RETRYABLE_FAILURE
    application_error = activity_error.cause
    assert isinstance(application_error, ApplicationError)
    assert application_error.type == ErrorTypes.GATEWAY_ADAPTER_BUG
    assert harness.gateway.calls == [("sale", "broken")]
