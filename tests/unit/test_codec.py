"""The payload codec: what the Temporal server stores is ciphertext, keys rotate, payloads from
before encryption still decode, and the remote codec endpoint refuses what it cannot read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from payments.errors import InvalidRequest
from payments.keyring import DecryptionFailed, KeyRing, new_key_entry
from workflows.codec import (
    ENCRYPTED_ENCODING,
    KEY_ID,
    MAX_REMOTE_PAYLOADS,
    EncryptionCodec,
    apply_codec,
    data_converter,
)

SECRET = "order-7f3a-card-4111111111111111"


@dataclass(frozen=True)
class Charge:
    order_id: str
    amount_minor: int


def ring(*key_ids: str) -> KeyRing:
    return KeyRing.parse(",".join(new_key_entry(key_id) for key_id in key_ids))


def rings_sharing_k1() -> tuple[KeyRing, KeyRing]:
    """([k1], [k2, k1]) with the same k1: a ring before and after a rotation."""
    old = ring("k1")
    new = KeyRing((ring("k2").keys[0], *old.keys))
    return old, new


def plain_payloads(*values: Any) -> list[Payload]:
    return DataConverter.default.payload_converter.to_payloads(list(values))


async def test_round_trip_through_the_data_converter() -> None:
    converter = data_converter(ring("k1"))
    value = Charge(SECRET, 1999)
    encoded = await converter.encode([value, "second"])
    assert len(encoded) == 2
    for payload in encoded:
        assert payload.metadata["encoding"] == ENCRYPTED_ENCODING
        assert payload.metadata[KEY_ID] == b"k1"
    assert await converter.decode(encoded, [Charge, str]) == [value, "second"]


async def test_the_ciphertext_holds_no_plaintext() -> None:
    encoded = await EncryptionCodec(ring("k1")).encode(plain_payloads(SECRET))
    stored = encoded[0].SerializeToString()
    assert SECRET.encode() not in stored
    # The payload's own metadata is inside the ciphertext too: the server cannot tell types.
    assert b"json/plain" not in stored
    assert set(encoded[0].metadata) == {"encoding", KEY_ID}


async def test_the_same_value_encrypts_differently_each_time() -> None:
    codec = EncryptionCodec(ring("k1"))
    first, second = await codec.encode(plain_payloads(SECRET, SECRET))
    assert first.data != second.data  # a fresh nonce per payload


async def test_rotation_old_payloads_decode_new_ones_use_the_newest_key() -> None:
    old_ring, rotated = rings_sharing_k1()
    written_before = await EncryptionCodec(old_ring).encode(plain_payloads(SECRET))
    codec = EncryptionCodec(rotated)
    assert await codec.decode(written_before) == plain_payloads(SECRET)
    written_after = await codec.encode(plain_payloads(SECRET))
    assert written_after[0].metadata[KEY_ID] == b"k2"


async def test_plaintext_payloads_from_before_encryption_pass_through() -> None:
    plain = plain_payloads(SECRET, {"a": 1})
    assert await EncryptionCodec(ring("k1")).decode(plain) == plain
    assert await data_converter(ring("k1")).decode(plain) == [SECRET, {"a": 1}]


async def test_a_tampered_payload_does_not_decode() -> None:
    codec = EncryptionCodec(ring("k1"))
    [payload] = await codec.encode(plain_payloads(SECRET))
    flipped = bytearray(payload.data)
    flipped[-1] ^= 0x01
    tampered = Payload(metadata=dict(payload.metadata), data=bytes(flipped))
    with pytest.raises(DecryptionFailed):
        await codec.decode([tampered])


async def test_an_unknown_key_id_is_named() -> None:
    [payload] = await EncryptionCodec(ring("k1")).encode(plain_payloads(SECRET))
    with pytest.raises(DecryptionFailed, match="k1"):
        await EncryptionCodec(ring("k9")).decode([payload])


async def test_a_malformed_key_id_is_not_repeated() -> None:
    [payload] = await EncryptionCodec(ring("k1")).encode(plain_payloads(SECRET))
    payload.metadata[KEY_ID] = b"<script>alert(1)</script>"
    with pytest.raises(DecryptionFailed) as raised:
        await EncryptionCodec(ring("k1")).decode([payload])
    assert "script" not in str(raised.value)


async def test_a_payload_encrypted_for_another_purpose_does_not_decode() -> None:
    keys = ring("k1")
    key_id, blob = keys.encrypt(Payload(data=b"x").SerializeToString())  # no associated data
    foreign = Payload(metadata={"encoding": ENCRYPTED_ENCODING, KEY_ID: key_id.encode()}, data=blob)
    with pytest.raises(DecryptionFailed):
        await EncryptionCodec(keys).decode([foreign])


async def test_failure_messages_and_stack_traces_are_encrypted() -> None:
    converter = data_converter(ring("k1"))
    try:
        raise ApplicationError(f"card declined for {SECRET}", type="Declined")
    except ApplicationError as error:
        failure = Failure()
        await converter.encode_failure(error, failure)
    stored = failure.SerializeToString()
    assert SECRET.encode() not in stored
    assert failure.message == "Encoded failure"
    assert failure.stack_trace == ""
    assert failure.encoded_attributes.metadata["encoding"] == ENCRYPTED_ENCODING
    decoded = await converter.decode_failure(failure)
    assert SECRET in str(decoded)


# --- the remote codec (POST /codec/encode, /codec/decode) --------------------------------------
def as_json(payloads: list[Payload]) -> dict[str, Any]:
    """What the Temporal UI sends: protobuf JSON, through a real JSON text."""
    body: dict[str, Any] = json.loads(json.dumps(MessageToDict(Payloads(payloads=payloads))))
    return body


async def test_remote_codec_round_trip_over_json() -> None:
    codec = EncryptionCodec(ring("k1"))
    original = as_json(plain_payloads(SECRET, Charge(SECRET, 5)))
    encoded = json.loads(json.dumps(await apply_codec(codec, "encode", original)))
    assert SECRET not in json.dumps(encoded)
    assert len(encoded["payloads"]) == 2
    decoded = await apply_codec(codec, "decode", encoded)
    assert decoded == original


async def test_remote_codec_decodes_what_workers_encode() -> None:
    keys = ring("k1")
    stored = await data_converter(keys).encode([Charge(SECRET, 5)])  # as the history holds it
    decoded = await apply_codec(EncryptionCodec(keys), "decode", as_json(stored))
    assert decoded == as_json(plain_payloads(Charge(SECRET, 5)))


async def test_remote_codec_answers_an_empty_list() -> None:
    answer = await apply_codec(EncryptionCodec(ring("k1")), "decode", {"payloads": []})
    assert answer == {"payloads": []}


def encrypted_body_with(**changes: Any) -> dict[str, Any]:
    return {"payloads": [{"metadata": {"encoding": "YmluYXJ5L2VuY3J5cHRlZA=="}, **changes}]}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([], id="not-an-object"),
        pytest.param("payloads", id="a-string"),
        pytest.param(None, id="null"),
        pytest.param({}, id="no-payloads"),
        pytest.param({"payloads": "x"}, id="payloads-not-a-list"),
        pytest.param({"payloads": [1]}, id="payload-not-an-object"),
        pytest.param({"payloads": [{"secret-field": SECRET}]}, id="unknown-field"),
        pytest.param({"payloads": [], "extra": SECRET}, id="unknown-top-level-field"),
        pytest.param({"payloads": [{"data": "!!!!"}]}, id="bad-base64-data"),
        pytest.param({"payloads": [{"data": "abcde"}]}, id="truncated-base64"),
        pytest.param({"payloads": [{"metadata": {"encoding": "%%%"}}]}, id="bad-base64-meta"),
        pytest.param({"payloads": [{"metadata": {"encoding": 5}}]}, id="metadata-not-a-string"),
        pytest.param({"payloads": [{}] * (MAX_REMOTE_PAYLOADS + 1)}, id="too-many"),
    ],
)
@pytest.mark.parametrize("operation", ["encode", "decode"])
async def test_remote_codec_refuses_malformed_bodies(body: object, operation: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        await apply_codec(
            EncryptionCodec(ring("k1")),
            "encode" if operation == "encode" else "decode",
            body,
        )
    assert SECRET not in raised.value.message
    assert "secret-field" not in raised.value.message


async def test_remote_codec_refuses_payloads_that_do_not_decrypt() -> None:
    codec = EncryptionCodec(ring("k1"))
    [payload] = await codec.encode(plain_payloads(SECRET))
    body = as_json([payload])
    other_ring = EncryptionCodec(ring("k9"))
    with pytest.raises(InvalidRequest, match="k1"):
        await apply_codec(other_ring, "decode", body)
    tampered = encrypted_body_with(data="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    tampered["payloads"][0]["metadata"][KEY_ID] = "azE="  # "k1"
    with pytest.raises(InvalidRequest) as raised:
        await apply_codec(codec, "decode", tampered)
    assert "AAAA" not in raised.value.message


async def test_remote_codec_accepts_url_safe_unpadded_base64() -> None:
    # Protobuf's JSON form allows both alphabets and optional padding.
    answer = await apply_codec(
        EncryptionCodec(ring("k1")),
        "decode",
        {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg"}, "data": "Pz8_"}]},
    )
    assert answer == {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "Pz8/"}]}
