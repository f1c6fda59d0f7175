"""Vaulted gateway tokens at rest: AES-256-GCM on the token key ring, bound to the payment
method, rotatable, and able to read the Fernet rows of the previous version."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from payments.config import GatewaySettings, PolicySettings, Settings
from payments.crypto import TokenCipher, TokenDecryptionFailed, build_token_cipher
from payments.errors import PaymentServiceError
from payments.keyring import DecryptionFailed, KeyRing, KeyRingMisconfigured, new_key_entry

TOKEN = "gw-token-7f3k9q"  # what Braintree's vault answers: it pays, so it must never leak
METHOD = "3f0c6b1e-0000-4000-8000-000000000001"
OTHER_METHOD = "3f0c6b1e-0000-4000-8000-000000000002"
K1 = new_key_entry("k1")
K2 = new_key_entry("k2")


def ring(*entries: str) -> KeyRing:
    return KeyRing.parse(",".join(entries))


def key_material(*entries: str) -> list[str]:
    return [entry.partition(":")[2] for entry in entries]


def assert_clean(error: BaseException, *secrets: str) -> None:
    """The message names neither the token nor any of ``secrets`` (keys, ciphertexts)."""
    text = str(error)
    assert TOKEN not in text
    for secret in secrets:
        assert secret not in text


# --- format and round trip ---------------------------------------------------------------------
def test_round_trip_in_the_versioned_format() -> None:
    cipher = TokenCipher(ring(K1))

    stored = cipher.encrypt(TOKEN, payment_method_id=METHOD)

    version, key_id, body = stored.split(":")
    assert (version, key_id) == ("v2", "k1")
    assert TOKEN not in stored
    assert base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))  # base64url
    assert cipher.decrypt(stored, payment_method_id=METHOD) == TOKEN
    assert TokenCipher.is_current(stored)


def test_equal_tokens_never_look_equal() -> None:
    cipher = TokenCipher(ring(K1))
    assert cipher.encrypt(TOKEN, payment_method_id=METHOD) != cipher.encrypt(
        TOKEN, payment_method_id=METHOD
    )


def test_a_ciphertext_copied_onto_another_payment_method_does_not_decrypt() -> None:
    cipher = TokenCipher(ring(K1))
    stored = cipher.encrypt(TOKEN, payment_method_id=METHOD)

    with pytest.raises(TokenDecryptionFailed) as raised:
        cipher.decrypt(stored, payment_method_id=OTHER_METHOD)

    assert OTHER_METHOD in str(raised.value)  # the operator learns which row
    assert_clean(raised.value, stored, *key_material(K1))


# --- rotation ------------------------------------------------------------------------------------
def test_rotation_reads_old_rows_and_writes_with_the_new_key() -> None:
    before = TokenCipher(ring(K1))
    old_row = before.encrypt(TOKEN, payment_method_id=METHOD)

    rotated = TokenCipher(ring(K2, K1))

    assert rotated.decrypt(old_row, payment_method_id=METHOD) == TOKEN
    new_row = rotated.encrypt(TOKEN, payment_method_id=METHOD)
    assert new_row.startswith("v2:k2:")
    assert rotated.decrypt(new_row, payment_method_id=METHOD) == TOKEN


def test_a_row_whose_key_left_the_ring_fails_naming_the_key_only() -> None:
    old_row = TokenCipher(ring(K1)).encrypt(TOKEN, payment_method_id=METHOD)

    with pytest.raises(TokenDecryptionFailed) as raised:
        TokenCipher(ring(K2)).decrypt(old_row, payment_method_id=METHOD)

    assert "'k1'" in str(raised.value) and "k2" in str(raised.value)
    assert_clean(raised.value, old_row, *key_material(K1, K2))


def test_a_key_with_the_same_id_but_other_material_does_not_decrypt() -> None:
    old_row = TokenCipher(ring(K1)).encrypt(TOKEN, payment_method_id=METHOD)
    impostor = new_key_entry("k1")

    with pytest.raises(TokenDecryptionFailed) as raised:
        TokenCipher(ring(impostor)).decrypt(old_row, payment_method_id=METHOD)

    assert_clean(raised.value, old_row, *key_material(K1, impostor))


# --- rows of the previous version (Fernet) -----------------------------------------------------
def test_legacy_rows_decrypt_with_the_legacy_key() -> None:
    legacy_key = Fernet.generate_key()
    legacy_row = Fernet(legacy_key).encrypt(TOKEN.encode()).decode()
    cipher = TokenCipher(ring(K1), legacy_key=legacy_key)

    assert cipher.decrypt(legacy_row, payment_method_id=METHOD) == TOKEN
    assert not TokenCipher.is_current(legacy_row)
    # New writes never use the legacy key.
    assert cipher.encrypt(TOKEN, payment_method_id=METHOD).startswith("v2:k1:")


def test_legacy_rows_fail_cleanly_without_the_legacy_key() -> None:
    legacy_key = Fernet.generate_key()
    legacy_row = Fernet(legacy_key).encrypt(TOKEN.encode()).decode()

    with pytest.raises(TokenDecryptionFailed) as raised:
        TokenCipher(ring(K1)).decrypt(legacy_row, payment_method_id=METHOD)
    assert "PAYMENTS_TOKEN_ENCRYPTION_KEY" in str(raised.value)
    assert_clean(raised.value, legacy_row, legacy_key.decode())

    other_key = Fernet.generate_key()
    with pytest.raises(TokenDecryptionFailed) as raised:
        TokenCipher(ring(K1), legacy_key=other_key).decrypt(legacy_row, payment_method_id=METHOD)
    assert_clean(raised.value, legacy_row, legacy_key.decode(), other_key.decode())


# --- tampering and garbage ---------------------------------------------------------------------
def _flip_a_ciphertext_bit(text: str) -> str:
    # On the bytes, not the text: the last base64 character may carry only padding bits.
    prefix, _, body = text.rpartition(":")
    blob = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    blob[-1] ^= 0x01
    return f"{prefix}:{base64.urlsafe_b64encode(bytes(blob)).decode().rstrip('=')}"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_flip_a_ciphertext_bit, id="ciphertext-changed"),
        pytest.param(lambda s: s[:-8], id="truncated"),
        pytest.param(lambda s: s.replace("v2:k1:", "v2:k2:"), id="other-key-id"),
        pytest.param(lambda s: s.replace("v2:k1:", "v2:k 1:"), id="malformed-key-id"),
        pytest.param(lambda s: s.replace("v2:k1:", "v2:"), id="no-key-id"),
        pytest.param(lambda s: s + "!!", id="not-base64url"),
        pytest.param(lambda s: "v2:k1:", id="empty-body"),
        pytest.param(lambda s: TOKEN, id="plaintext-token"),
        pytest.param(lambda s: "", id="empty"),
    ],
)
def test_tampered_or_garbage_text_fails_cleanly(tamper: Callable[[str], str]) -> None:
    # With a legacy key too: a value that lost its v2 prefix must not slip through that path.
    cipher = TokenCipher(ring(K1), legacy_key=Fernet.generate_key())
    stored = cipher.encrypt(TOKEN, payment_method_id=METHOD)
    altered = tamper(stored)
    assert altered != stored

    with pytest.raises(TokenDecryptionFailed) as raised:
        cipher.decrypt(altered, payment_method_id=METHOD)

    assert_clean(raised.value, stored, *key_material(K1))


def test_one_root_for_every_decryption_failure() -> None:
    assert issubclass(TokenDecryptionFailed, DecryptionFailed)
    assert issubclass(TokenDecryptionFailed, PaymentServiceError)
    assert TokenDecryptionFailed.code == "token_decryption_failed"


# --- build_token_cipher: configuration ---------------------------------------------------------
def settings(tmp_path: Path, *, environment: str = "local", **policy: object) -> Settings:
    gateway: dict[str, object] = {"environment": environment}
    if environment != "local":
        gateway["private_key"] = SecretStr("a-real-private-key")
    values: dict[str, object] = {
        "token_keys": None,
        "token_encryption_key": None,
        "dev_token_keys_file": tmp_path / "token-keys.dev",
        "dev_token_key_file": tmp_path / "token-encryption.dev.key",
    }
    values.update(policy)
    return Settings(
        gateway=GatewaySettings.model_validate(gateway),
        policy=PolicySettings.model_validate(values),
    )


def test_configured_ring_is_used(tmp_path: Path) -> None:
    configured = settings(tmp_path, environment="production", token_keys=SecretStr(f"{K2},{K1}"))
    old_row = TokenCipher(ring(K1)).encrypt(TOKEN, payment_method_id=METHOD)

    cipher = build_token_cipher(configured)

    assert cipher.encrypt(TOKEN, payment_method_id=METHOD).startswith("v2:k2:")
    assert cipher.decrypt(old_row, payment_method_id=METHOD) == TOKEN
    assert not (tmp_path / "token-keys.dev").exists()


def test_local_development_generates_a_ring_once(tmp_path: Path) -> None:
    first = build_token_cipher(settings(tmp_path))
    stored = first.encrypt(TOKEN, payment_method_id=METHOD)

    again = build_token_cipher(settings(tmp_path))  # another process, or a restart

    assert (tmp_path / "token-keys.dev").exists()
    assert again.decrypt(stored, payment_method_id=METHOD) == TOKEN
    assert not (tmp_path / "token-encryption.dev.key").exists()  # no legacy key is made


def test_a_missing_ring_against_braintree_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(KeyRingMisconfigured, match="PAYMENTS_TOKEN_KEYS"):
        build_token_cipher(settings(tmp_path, environment="sandbox"))
    assert not (tmp_path / "token-keys.dev").exists()


def test_legacy_key_from_the_setting(tmp_path: Path) -> None:
    legacy_key = Fernet.generate_key()
    legacy_row = Fernet(legacy_key).encrypt(TOKEN.encode()).decode()
    configured = settings(
        tmp_path,
        environment="production",
        token_keys=SecretStr(K1),
        token_encryption_key=SecretStr(legacy_key.decode()),
    )

    assert build_token_cipher(configured).decrypt(legacy_row, payment_method_id=METHOD) == TOKEN


def test_legacy_dev_key_file_is_read_for_local_only(tmp_path: Path) -> None:
    legacy_key = Fernet.generate_key()
    (tmp_path / "token-encryption.dev.key").write_bytes(legacy_key + b"\n")
    legacy_row = Fernet(legacy_key).encrypt(TOKEN.encode()).decode()

    local = build_token_cipher(settings(tmp_path))
    assert local.decrypt(legacy_row, payment_method_id=METHOD) == TOKEN

    production = build_token_cipher(
        settings(tmp_path, environment="production", token_keys=SecretStr(K1))
    )
    with pytest.raises(TokenDecryptionFailed):
        production.decrypt(legacy_row, payment_method_id=METHOD)


def test_blank_legacy_setting_is_no_legacy_key(tmp_path: Path) -> None:
    cipher = build_token_cipher(
        settings(
            tmp_path,
            environment="production",
            token_keys=SecretStr(K1),
            token_encryption_key=SecretStr(""),
        )
    )
    with pytest.raises(TokenDecryptionFailed, match="no legacy key"):
        cipher.decrypt("gAAAAA-not-a-v2-row", payment_method_id=METHOD)


def test_an_invalid_legacy_key_is_refused_without_showing_it(tmp_path: Path) -> None:
    bad = "not-a-fernet-key-but-secret"
    with pytest.raises(KeyRingMisconfigured) as raised:
        build_token_cipher(
            settings(
                tmp_path,
                environment="production",
                token_keys=SecretStr(K1),
                token_encryption_key=SecretStr(bad),
            )
        )
    assert "PAYMENTS_TOKEN_ENCRYPTION_KEY" in str(raised.value)
    assert bad not in str(raised.value)
