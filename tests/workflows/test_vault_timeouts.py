"""Vaulting when the gateway is slow or loses answers: the workflow always ends with the
outcome recorded, a retry never vaults the card twice, and nothing stays vaulted at the
gateway for a method the customer was told had failed."""

from __future__ import annotations

import uuid

from payments.vocabulary import VaultStatus
from tests.workflows.conftest import Harness, run_vault

NONCE = "fake-valid-visa-nonce"


def pending_method(harness: Harness) -> str:
    """A payment method row as the API writes it before starting the vault."""
    method_id = str(uuid.uuid4())
    harness.db.payment_methods.add_pending(method_id, merchant_id="default", user_id="user-1")
    return method_id


async def test_a_lost_answer_is_found_again_not_vaulted_twice(harness: Harness) -> None:
    # The gateway vaulted the card but its answer never arrived; the retry's nonce is spent.
    harness.gateway.vault_answers_lost = 1
    method_id = pending_method(harness)

    result = await run_vault(harness, method_id, NONCE)

    assert result.succeeded
    [vaulted] = harness.gateway.vaulted.values()  # one card at the gateway, not two
    stored = harness.db.payment_methods.get(method_id)
    assert stored is not None and stored.status == VaultStatus.ACTIVE
    assert stored.token_ciphertext is not None
    assert harness.gateway.vaulted == {vaulted.token: vaulted}
    assert [op for op, _ in harness.gateway.calls] == ["vault", "find_payment_method"]


async def test_giving_up_deletes_what_was_vaulted_meanwhile(harness: Harness) -> None:
    # The first attempt vaulted the card and lost the answer; then the gateway is down until
    # the vault's 10 minutes are over (skipped on the test server).
    harness.gateway.vault_answers_lost = 1
    harness.gateway.unavailable_times = 10**6
    method_id = pending_method(harness)

    result = await run_vault(harness, method_id, NONCE)

    assert (result.succeeded, result.error_code) == (False, "gateway_unavailable")
    stored = harness.db.payment_methods.get(method_id)
    assert stored is not None and stored.status == VaultStatus.FAILED
    assert harness.gateway.vaulted == {}, "the orphan is still vaulted at the gateway"
    assert harness.gateway.calls[-1][0] == "delete_payment_method"


async def test_a_vault_that_lands_after_giving_up_is_deleted_not_activated(
    harness: Harness,
) -> None:
    """An attempt cut off by the deadline still runs on its worker; its card is vaulted after
    the workflow marked the method failed (the customer was told so)."""
    method_id = pending_method(harness)

    def gave_up_meanwhile() -> None:
        harness.db.payment_methods.fail(method_id, code="gateway_unavailable", message="late")

    harness.gateway.during_vault = gave_up_meanwhile

    result = await run_vault(harness, method_id, NONCE)

    assert (result.succeeded, result.error_code) == (False, "gateway_unavailable")
    stored = harness.db.payment_methods.get(method_id)
    assert stored is not None and stored.status == VaultStatus.FAILED
    assert stored.token_ciphertext is None
    assert harness.gateway.vaulted == {}
