"""A Braintree-compatible sandbox server for development and tests (never production).

It speaks the XML API the official braintree SDK uses, with Braintree's documented sandbox
test values (``fake-valid-nonce``, wallet and bank nonces, amounts 2000-2999.99 declined,
...), so the service runs its real adapter against it: ``BRAINTREE_ENVIRONMENT=local`` plus
``python -m devtools.sandbox``. Transactions, a vault (customers, payment methods),
client-side card tokenization and Braintree-style webhooks (``SANDBOX_WEBHOOK_URL``). It does
not import braintree.
"""

from devtools.sandbox.app import GatewayFault, create_sandbox_app

__all__ = ["GatewayFault", "create_sandbox_app"]
