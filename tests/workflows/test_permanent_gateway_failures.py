"""Failures that no retry can heal end the step at once, as results a customer sees: a request
the gateway rejects as malformed, and a saved payment method whose token does not decrypt."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from payments.contracts import RemovePaymentMethodRequest, VaultRequest
from payments.crypto import TokenCipher
from payments.db.models import StoredPaymentMethod
from payments.errors import ErrorTypes
from payments.keyring import KeyRing, new_key_entry
from payments.vocabulary import VaultStatus
from tests.workflows.conftest import Harness
from tests.workflows.test_payment_workflow import request, run
from tests.workflows.test_refund_workflow import paid_payment, refund, reserve
from workflows.payment_methods import RemovePaymentMethodWorkflow, VaultPaymentMethodWorkflow


def saved_method(harness: Harness, token_ciphertext: str, user_id: str = "user-1") -> str:
    """An active saved method row holding ``token_ciphertext``, as the vault leaves one."""
    method_id = str(uuid.uuid4())
    harness.db.payment_methods.add(
        StoredPaymentMethod(
            payment_method_id=method_id,
            merchant_id="default",
            user_id=user_id,
            status=VaultStatus.ACTIVE,
            token_ciphertext=token_ciphertext,
            instrument_type="credit_card",
        )
    )
    return method_id


async def vault(harness: Harness, nonce: str = "fake-valid-visa-nonce") -> str:
    method_id = str(uuid.uuid4())
    result = await harness.client.execute_workflow(
        VaultPaymentMethodWorkflow.run,
        VaultRequest(method_id, "user-1", nonce),
        id=f"vault-{method_id}",
        task_queue=harness.task_queue,
    )
    assert result.succeeded
    return method_id


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

    result = await harness.client.execute_workflow(
        VaultPaymentMethodWorkflow.run,
        VaultRequest(method_id, "user-1", "abc\u0001def"),
        id=f"vault-{method_id}",
        task_queue=harness.task_queue,
    )

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
    method_id = await vault(harness)
    harness.gateway.rejected = {"delete_payment_method"}

    with pytest.raises(WorkflowFailureError) as failed:
        await harness.client.execute_workflow(
            RemovePaymentMethodWorkflow.run,
            RemovePaymentMethodRequest(method_id),
            id=f"remove-{method_id}",
            task_queue=harness.task_queue,
        )

    assert _activity_error_type(failed.value) == ErrorTypes.GATEWAY_REQUEST_REJECTED
    assert [op for op, _ in harness.gateway.calls].count("delete_payment_method") == 1


# --- the saved method's token does not decrypt -------------------------------------------------
async def test_charge_with_a_token_of_a_retired_key_fails_without_a_gateway_call(
    harness: Harness,
) -> None:
    # Written with a key that is no longer in the ring.
    retired = TokenCipher(KeyRing.parse(new_key_entry("retired")))
    method_id = str(uuid.uuid4())
    ciphertext = retired.encrypt("token-of-the-gateway", payment_method_id=method_id)
    harness.db.payment_methods.add(
        StoredPaymentMethod(
            payment_method_id=method_id,
            merchant_id="default",
            user_id="user-1",
            status=VaultStatus.ACTIVE,
            token_ciphertext=ciphertext,
        )
    )
    req = replace(request(), payment_token=None, payment_method_id=method_id)

    result = await run(harness, req)

    assert result.status == "failure"
    assert result.failure_reason == "payment_method_unreadable"
    assert harness.gateway.calls == []
    stored = harness.db.payments.get(req.payment_id)
    assert stored is not None and stored.failure_message is not None
    assert "token-of-the-gateway" not in stored.failure_message


async def test_token_copied_onto_another_method_does_not_pay(harness: Harness) -> None:
    original = await vault(harness)
    stored = harness.db.payment_methods.get(original)
    assert stored is not None and stored.token_ciphertext is not None
    copy = saved_method(harness, stored.token_ciphertext)
    harness.gateway.calls.clear()

    result = await run(harness, replace(request(), payment_token=None, payment_method_id=copy))

    assert (result.status, result.failure_reason) == ("failure", "payment_method_unreadable")
    assert harness.gateway.calls == []
    # The original row still pays with the same ciphertext.
    paid = await run(harness, replace(request(), payment_token=None, payment_method_id=original))
    assert paid.status == "success"


async def test_removal_of_an_unreadable_method_fails_without_retrying(harness: Harness) -> None:
    method_id = saved_method(harness, "v2:retired:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")

    with pytest.raises(WorkflowFailureError) as failed:
        await harness.client.execute_workflow(
            RemovePaymentMethodWorkflow.run,
            RemovePaymentMethodRequest(method_id),
            id=f"remove-{method_id}",
            task_queue=harness.task_queue,
        )

    assert _activity_error_type(failed.value) == ErrorTypes.PAYMENT_METHOD_UNREADABLE
    assert harness.gateway.calls == []


def _activity_error_type(failure: WorkflowFailureError) -> str | None:
    activity_error = failure.cause
    assert isinstance(activity_error, ActivityError)
    application_error = activity_error.cause
    assert isinstance(application_error, ApplicationError)
    # Failed as non-retryable on its first attempt, not after Temporal gave up retrying.
    assert activity_error.retry_state == RetryState.NON_RETRYABLE_FAILURE
    return application_error.type
