"""Vaulting and removing payment methods at the gateway, as short workflows so that the
gateway calls get Temporal's timeouts, retries and history like every other gateway call.

``vault-{payment_method_id}``: store a nonce's payment method for a user (the API waits for
the result). ``remove-payment-method-{payment_method_id}``: delete it at the gateway after
the API has already made it unusable in the database.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.gateway import GatewayActivities
    from activities.ledger import LedgerActivities
    from payments.contracts import RemovePaymentMethodRequest, VaultRequest, VaultResult

from workflows.options import GATEWAY, LEDGER, VAULT


@workflow.defn
class VaultPaymentMethodWorkflow:
    @workflow.run
    async def run(self, request: VaultRequest) -> VaultResult:
        """The vault activity records the gateway's answer on the payment method's row
        (active or failed). If the gateway never answers in time, or the call cannot be
        made, the row must not stay pending: it is marked failed here."""
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
            return failed


@workflow.defn
class RemovePaymentMethodWorkflow:
    @workflow.run
    async def run(self, request: RemovePaymentMethodRequest) -> None:
        await workflow.execute_activity_method(
            GatewayActivities.remove_payment_method, request, **GATEWAY
        )
