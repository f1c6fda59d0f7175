"""API keys and who is asking: the secret's format, its hash, and the Principal a request
acts as.

A secret looks like ``psk_3f9c0a1b2c4d_<43 base64url characters>``: a recognisable prefix
(secret scanners and the log redaction find it), the key id's public part, and 256 random bits.
Only the SHA-256 of the whole secret is stored; the id part lets the lookup be one primary-key
read, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from payments.db.models import Role

SECRET_PREFIX = "psk_"  # noqa: S105  (a prefix, not a secret)
KEY_ID_PREFIX = "key_"
_SECRET = re.compile(r"^psk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class NewSecret:
    key_id: str
    secret: str  # shown once, never stored
    secret_hash: str


@dataclass(frozen=True, slots=True)
class Principal:
    """The API key a request was made with."""

    key_id: str
    role: Role
    # The merchant a checkout key acts for; an admin key may have one (then new payments it
    # starts belong to it) or none.
    merchant_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def can_see(self, merchant_id: str) -> bool:
        """Whether an object of ``merchant_id`` exists for this key. A checkout key never
        learns of another merchant's objects (the API answers 404, as for unknown ids)."""
        return self.is_admin or self.merchant_id == merchant_id

    def merchant_filter(self) -> str | None:
        """The merchant lists are restricted to: its own for a checkout key, None (all) for
        an admin."""
        return None if self.is_admin else self.merchant_id


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> NewSecret:
    public = secrets.token_hex(6)
    secret = f"{SECRET_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    assert _SECRET.match(secret), "token_urlsafe(32) is 43 characters"
    return NewSecret(key_id=KEY_ID_PREFIX + public, secret=secret, secret_hash=hash_secret(secret))


def key_id_of(secret: str) -> str | None:
    """The key id a well-formed secret names; None for anything else."""
    match = _SECRET.match(secret)
    return KEY_ID_PREFIX + match.group(1) if match else None


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
