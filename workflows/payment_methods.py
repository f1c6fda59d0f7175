"""Vaulting and removing payment methods at the gateway, as short workflows so that the
gateway calls get Temporal's timeouts, retries and history like every other gateway call.

``vault-{payment_method_id}``: store a nonce's payment method for a user (the API waits for
the result). ``remove-payment-method-{payment_method_id}``: delete it at the gateway after
the API has already made it unusable in the database.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from payments.contracts import RemovePaymentMethodRequest, VaultRequest, VaultResult

from workflows import steps


@workflow.defn
class VaultPaymentMethodWorkflow:
    @workflow.run
    async def run(self, request: VaultRequest) -> VaultResult:
        return await steps.vault_payment_method(request)


@workflow.defn
class RemovePaymentMethodWorkflow:
    @workflow.run
    async def run(self, request: RemovePaymentMethodRequest) -> None:
        await steps.remove_payment_method(request)
