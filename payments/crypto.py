"""Encryption at rest of gateway tokens (vaulted payment methods).

A token is encrypted with the newest key of the token key ring (``PAYMENTS_TOKEN_KEYS``,
AES-256-GCM, see ``payments.keyring``) and stored as ``v2:<key id>:<base64url(nonce +
ciphertext)>``. The payment method's id is the associated data: a ciphertext copied onto
another payment method's row does not decrypt, so a database write cannot make one customer's
saved card pay for another's payment method. Rotation: put a new key in front of the ring;
rows written with an older key keep decrypting as long as that key stays in the ring.

Rows written by the previous version hold a Fernet token (no ``v2:`` prefix). They are only
read, with ``PAYMENTS_TOKEN_ENCRYPTION_KEY`` or, for local development, the legacy key file
if it is already there; a legacy key is never generated. New tokens are always written as v2.

Every failure to decrypt is ``TokenDecryptionFailed``; its message names the payment method
and the key id, never the token, the ciphertext or key material.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from payments.config import Settings
from payments.keyring import DecryptionFailed, KeyRing, KeyRingMisconfigured, load_key_ring

VERSION = "v2"
_PREFIX = f"{VERSION}:"
# Key ids as payments.keyring accepts them; a stored id that is not one is a corrupt row.
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Domain separation: a token ciphertext never verifies as another kind of ciphertext (nor the
# reverse), even if an operator reused a key across rings.
_AAD_PREFIX = b"payments/gateway-token/v2\x00"


class TokenDecryptionFailed(DecryptionFailed):
    """A stored gateway token that cannot be decrypted: written with a key no longer in the
    ring (or a legacy key that is not configured), tampered with, or copied from another
    payment method's row. Retrying cannot help; the customer must save the method again."""

    code = "token_decryption_failed"


class TokenCipher:
    """Encrypts gateway tokens with ``ring`` (newest key) and decrypts them with any key of
    the ring; ``legacy_key``, when given, only decrypts Fernet rows of the previous version.
    Thread-safe (no mutable state): one instance serves the activity thread pool."""

    def __init__(self, ring: KeyRing, *, legacy_key: bytes | None = None) -> None:
        self._ring = ring
        self._legacy = Fernet(legacy_key) if legacy_key is not None else None

    def encrypt(self, token: str, *, payment_method_id: str) -> str:
        """``v2:<key id>:<base64url>`` with the ring's newest key, bound to
        ``payment_method_id``. A new nonce each call: equal tokens never look equal."""
        key_id, blob = self._ring.encrypt(
            token.encode(), associated_data=_associated_data(payment_method_id)
        )
        return f"{_PREFIX}{key_id}:{base64.urlsafe_b64encode(blob).decode().rstrip('=')}"

    def decrypt(self, ciphertext: str, *, payment_method_id: str) -> str:
        """The token stored for ``payment_method_id``. Raises TokenDecryptionFailed for any
        value that does not decrypt for that payment method."""
        if ciphertext.startswith(_PREFIX):
            return self._decrypt_v2(ciphertext.removeprefix(_PREFIX), payment_method_id)
        return self._decrypt_legacy(ciphertext, payment_method_id)

    @staticmethod
    def is_current(ciphertext: str) -> bool:
        """True if ``ciphertext`` is in the current format (a legacy row may be rewritten)."""
        return ciphertext.startswith(_PREFIX)

    def _decrypt_v2(self, body: str, payment_method_id: str) -> str:
        key_id, sep, encoded = body.partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise TokenDecryptionFailed(
                f"the stored token of payment method {payment_method_id} is malformed"
            )
        try:
            blob = base64.b64decode(
                encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True
            )
        except (binascii.Error, ValueError):
            raise TokenDecryptionFailed(
                f"the stored token of payment method {payment_method_id} is not base64url"
            ) from None
        if key_id not in self._ring.ids():
            raise TokenDecryptionFailed(
                f"the stored token of payment method {payment_method_id} was encrypted with "
                f"key '{key_id}', which is not in PAYMENTS_TOKEN_KEYS "
                f"(ring: {', '.join(self._ring.ids())})"
            )
        try:
            plaintext = self._ring.decrypt(
                key_id, blob, associated_data=_associated_data(payment_method_id)
            )
            return plaintext.decode()
        except (DecryptionFailed, UnicodeDecodeError):
            raise TokenDecryptionFailed(
                f"the stored token of payment method {payment_method_id} does not decrypt "
                f"with key '{key_id}' (tampered, or copied from another payment method)"
            ) from None

    def _decrypt_legacy(self, ciphertext: str, payment_method_id: str) -> str:
        if self._legacy is None:
            raise TokenDecryptionFailed(
                f"the stored token of payment method {payment_method_id} is not a v2 "
                "ciphertext and no legacy key (PAYMENTS_TOKEN_ENCRYPTION_KEY) is configured"
            )
        try:
            return self._legacy.decrypt(ciphertext.encode()).decode()
        except (InvalidToken, UnicodeError):
            raise TokenDecryptionFailed(
                f"the stored token of payment method {payment_method_id} is not a v2 "
                "ciphertext and does not decrypt with the legacy key"
            ) from None


def _associated_data(payment_method_id: str) -> bytes:
    return _AAD_PREFIX + payment_method_id.encode()


def _legacy_key(configured: SecretStr | None, dev_file: Path, *, local: bool) -> bytes | None:
    """The previous version's Fernet key, if there is one to read old rows with. The dev file
    only counts for the local sandbox (the only place the previous version wrote it); a blank
    setting (an env file's ``PAYMENTS_TOKEN_ENCRYPTION_KEY=``) is no key."""
    if configured is not None and configured.get_secret_value().strip():
        key = configured.get_secret_value().strip().encode()
        setting = "PAYMENTS_TOKEN_ENCRYPTION_KEY"
    elif local and dev_file.is_file():
        key = dev_file.read_bytes().strip()
        setting = str(dev_file)
    else:
        return None
    try:
        Fernet(key)
    except (ValueError, binascii.Error):
        raise KeyRingMisconfigured(f"{setting} is not a Fernet key") from None
    return key


def build_token_cipher(settings: Settings) -> TokenCipher:
    """The cipher of this deployment: the ring of ``PAYMENTS_TOKEN_KEYS`` (for the local
    sandbox only, generated once into ``.data/`` if unset) and the legacy Fernet key if one
    is configured. Raises KeyRingMisconfigured (never showing key material) otherwise."""
    local = settings.gateway.environment == "local"
    ring = load_key_ring(
        settings.policy.token_keys,
        dev_file=settings.policy.dev_token_keys_file,
        allow_development=local,
        setting="PAYMENTS_TOKEN_KEYS",
    )
    legacy = _legacy_key(
        settings.policy.token_encryption_key, settings.policy.dev_token_key_file, local=local
    )
    return TokenCipher(ring, legacy_key=legacy)
