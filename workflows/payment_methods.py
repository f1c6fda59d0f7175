"""Vaulting and removing payment methods at the gateway, as short workflows so that the
gateway calls get Temporal's timeouts, retries and history like every other gateway call.

``vault-{payment_method_id}``: store a nonce's payment method for a user (the API waits for
the result). ``remove-payment-method-{payment_method_id}``: delete it at the gateway after
the API has already made it unusable in the database.
"""

from __future__ import annotations

from dataclasses import replace

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.gateway import GatewayActivities
    from activities.ledger import LedgerActivities
    from payments.contracts import RemovePaymentMethodRequest, VaultRequest, VaultResult

from workflows.options import GATEWAY, GATEWAY_START_TO_CLOSE, LEDGER, VAULT


@workflow.defn
class VaultPaymentMethodWorkflow:
    @workflow.run
    async def run(self, request: VaultRequest) -> VaultResult:
        """The vault activity records the gateway's answer on the payment method's row
        (active or failed). The workflow has no execution timeout: it always ends, with the
        outcome recorded. If the gateway never answers in time (VAULT's schedule-to-close),
        or the call cannot be made, the row must not stay pending: it is marked failed here,
        and whatever an attempt may still have vaulted is deleted from the gateway.

        The method is vaulted under a token chosen here (random, the same in every attempt):
        a retry finds what an earlier attempt vaulted, and the clean-up knows what to delete.
        Choosing it issues no command."""
        if request.gateway_token is None:
            request = replace(request, gateway_token=workflow.uuid4().hex)
        try:
            return await workflow.execute_activity_method(
                GatewayActivities.vault_payment_method, request, **VAULT
            )
        except ActivityError as exc:
            workflow.logger.warning("vault gave up: %s", type(exc.cause).__name__)
            failed = VaultResult(
                succeeded=False,
                payment_method_id=request.payment_method_id,
                error_code="gateway_unavailable",
                error_message="the gateway did not answer in time; tokenize the card again",
            )
            await workflow.execute_activity_method(
                LedgerActivities.record_vault_failure, failed, **LEDGER
            )
            # Asked only on this path, so that histories that never gave up are unchanged.
            if workflow.patched("vault-gave-up-deletes-orphan"):
                await self._discard_orphan(request)
            return failed

    @staticmethod
    async def _discard_orphan(request: VaultRequest) -> None:
        """The schedule-to-close may have cut an attempt mid-call: its thread still runs on
        its worker, and the gateway may still vault. Wait until any such call has ended (each
        SDK call times out well within GATEWAY's start-to-close), then delete the token's
        method. A late attempt that vaults meanwhile finds the row failed and deletes its
        method itself."""
        await workflow.sleep(GATEWAY_START_TO_CLOSE)
        await workflow.execute_activity_method(
            GatewayActivities.discard_abandoned_vault, request, **GATEWAY
        )


@workflow.defn
class RemovePaymentMethodWorkflow:
    @workflow.run
    async def run(self, request: RemovePaymentMethodRequest) -> None:
        await workflow.execute_activity_method(
            GatewayActivities.remove_payment_method, request, **GATEWAY
        )
