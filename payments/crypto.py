"""Encryption at rest of gateway tokens (vaulted payment methods).

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with the key from
``PAYMENTS_TOKEN_ENCRYPTION_KEY``. For local development only, when no key is set and the
gateway is the local sandbox, a key is generated once into ``.data/`` (never committed);
against Braintree a missing key is a configuration error.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from payments.config import Settings
from payments.errors import PaymentServiceError


class TokenDecryptionFailed(PaymentServiceError):
    code = "token_decryption_failed"


class TokenCipher:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise TokenDecryptionFailed(
                "a stored gateway token cannot be decrypted with the configured key"
            ) from None


def _development_key(path: Path) -> bytes:
    """Read the development key, creating it atomically if it is missing (several processes
    of `make run` start at once: the first link wins, the others read its key)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate = path.with_name(f"{path.name}.{os.getpid()}")
        candidate.write_bytes(Fernet.generate_key())
        candidate.chmod(0o600)
        with contextlib.suppress(FileExistsError):
            os.link(candidate, path)
        candidate.unlink()
    return path.read_bytes().strip()


def build_token_cipher(settings: Settings) -> TokenCipher:
    configured = settings.policy.token_encryption_key
    if configured is not None:
        return TokenCipher(configured.get_secret_value().encode())
    if settings.gateway.environment != "local":
        raise ValueError(
            "PAYMENTS_TOKEN_ENCRYPTION_KEY must be set when BRAINTREE_ENVIRONMENT is not 'local'"
            " (generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        )
    return TokenCipher(_development_key(settings.policy.dev_token_key_file))
