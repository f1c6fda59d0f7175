"""Key rings for encryption at rest: AES-256-GCM with named keys, for rotation.

Used for Temporal payloads (``workflows/codec.py``) and for vaulted gateway tokens
(``payments/crypto.py``). A ring is configured as comma-separated ``key-id:base64url-key``
entries, newest first: new ciphertexts use the newest key and name it, older keys only decrypt
what was written with them. Rotating is adding a key in front, and dropping an old one once
nothing encrypted with it is still read (a payment that sleeps for weeks still holds payloads
written with the key of its start).

For local development only (the gateway is the local sandbox), a missing ring is generated
once into ``.data/``; against Braintree a missing ring is a configuration error.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from payments.errors import PaymentServiceError

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard nonce; random per message (2^32 messages per key is safe)
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class DecryptionFailed(PaymentServiceError):
    """A ciphertext that no key of the ring opens: an unknown key id, a wrong key, tampered
    data or data bound to another context. Retrying cannot help."""

    code = "decryption_failed"


class KeyRingMisconfigured(ValueError):
    """The configured ring cannot be used. The message never contains key material."""


@dataclass(frozen=True)
class KeyRing:
    """Named AES-256 keys, newest first."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyRingMisconfigured("a key ring needs at least one key")
        ids = [key_id for key_id, _ in self.keys]
        if len(set(ids)) != len(ids):
            raise KeyRingMisconfigured("key ids must be unique within a ring")

    @classmethod
    def parse(cls, text: str, *, setting: str = "key ring") -> KeyRing:
        """``"k2:base64url,k1:base64url"`` (newest first) → KeyRing. Raises
        KeyRingMisconfigured naming the setting and the entry's position, never its value."""
        keys: list[tuple[str, bytes]] = []
        for position, entry in enumerate(
            (part.strip() for part in text.split(",") if part.strip()), start=1
        ):
            key_id, sep, encoded = entry.partition(":")
            if not sep or not _KEY_ID.match(key_id):
                raise KeyRingMisconfigured(
                    f"{setting}: entry {position} is not 'key-id:base64url-key' "
                    "(key ids: letters, digits, '.', '_', '-')"
                )
            try:
                key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except (binascii.Error, ValueError):
                raise KeyRingMisconfigured(
                    f"{setting}: the key of entry {position} ({key_id}) is not base64url"
                ) from None
            if len(key) != KEY_BYTES:
                raise KeyRingMisconfigured(
                    f"{setting}: the key of entry {position} ({key_id}) has {len(key)} bytes, "
                    f"AES-256 needs {KEY_BYTES}"
                )
            keys.append((key_id, key))
        if not keys:
            raise KeyRingMisconfigured(f"{setting} holds no key")
        return cls(tuple(keys))

    def ids(self) -> list[str]:
        return [key_id for key_id, _ in self.keys]

    def encrypt(self, plaintext: bytes, *, associated_data: bytes = b"") -> tuple[str, bytes]:
        """(key id, nonce + ciphertext) with the newest key. ``associated_data`` binds the
        ciphertext to its context (decryption with another one fails)."""
        key_id, key = self.keys[0]
        nonce = os.urandom(NONCE_BYTES)
        return key_id, nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)

    def decrypt(self, key_id: str, blob: bytes, *, associated_data: bytes = b"") -> bytes:
        key = dict(self.keys).get(key_id)
        if key is None:
            raise DecryptionFailed(f"no key '{key_id}' in the key ring")
        if len(blob) <= NONCE_BYTES:
            raise DecryptionFailed("ciphertext too short")
        try:
            return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated_data)
        except InvalidTag:
            raise DecryptionFailed(
                f"ciphertext does not decrypt with key '{key_id}' (tampered, or another context)"
            ) from None


def new_key_entry(key_id: str | None = None) -> str:
    """A fresh ``key-id:base64url-key`` entry (the id defaults to today's date and a suffix)."""
    key_id = key_id or f"{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"
    encoded = base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")
    return f"{key_id}:{encoded}"


def _development_ring(path: Path) -> str:
    """Read the development ring, creating it atomically if it is missing (the processes of
    `make run` start at once: the first link wins, the others read its key)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate = path.with_name(f"{path.name}.{os.getpid()}")
        candidate.write_text(new_key_entry("dev-1") + "\n")
        candidate.chmod(0o600)
        with contextlib.suppress(FileExistsError):
            os.link(candidate, path)
        candidate.unlink()
    return path.read_text().strip()


def load_key_ring(
    configured: SecretStr | None, *, dev_file: Path, allow_development: bool, setting: str
) -> KeyRing:
    """The configured ring; else, in local development only, the one in ``dev_file``
    (generated on first use). Raises KeyRingMisconfigured with a hint on how to make one."""
    if configured is not None:
        return KeyRing.parse(configured.get_secret_value(), setting=setting)
    if not allow_development:
        raise KeyRingMisconfigured(
            f"{setting} must be set when BRAINTREE_ENVIRONMENT is not 'local' (make one with: "
            "python -c 'from payments.keyring import new_key_entry; print(new_key_entry())')"
        )
    return KeyRing.parse(_development_ring(dev_file), setting=str(dev_file))
