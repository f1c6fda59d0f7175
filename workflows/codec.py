"""Encryption of every Temporal payload (AES-256-GCM), and the remote codec contract.

The Temporal server stores workflow and activity inputs, results, query answers and failures
(message and stack trace too: see :func:`data_converter`). With :class:`EncryptionCodec` it only
ever sees ciphertext: each payload is serialised whole (metadata included, so the server cannot
even tell a payment request from a refund) and encrypted with the newest key of the ring; the
key's id travels in the clear next to it, so payloads written before a rotation still decode
while their key is in the ring. What the server must read stays in the clear: workflow ids
and types, activity types, task queues, search attributes (ids and statuses only, by house
rule), and headers (the SDK's default leaves them out of the codec).

The Temporal Web UI and CLI decode through a remote codec endpoint (``POST /codec/decode`` and
``/codec/encode``, mounted by the API); :func:`apply_codec` is that endpoint's whole logic.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Sequence
from typing import Any, Literal

import temporalio.converter
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload, Payloads

from payments.errors import InvalidRequest
from payments.keyring import DecryptionFailed, KeyRing

ENCODING = "encoding"
ENCRYPTED_ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
# Binds every ciphertext to its use: a blob encrypted with the same key for another purpose
# (say, a vaulted token under a shared ring) does not decrypt as a Temporal payload.
ASSOCIATED_DATA = b"temporal-payload/v1"

# One request of the remote codec carries the payloads of one history event or one UI action:
# a handful. The cap only bounds the work one request can ask for.
MAX_REMOTE_PAYLOADS = 1000

# Key ids as KeyRing.parse accepts them: only such an id is safe to repeat in a message.
_PRINTABLE_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Protobuf's JSON form of bytes: standard or URL-safe base64, padding optional.
_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")


class EncryptionCodec(temporalio.converter.PayloadCodec):
    """Encrypts every payload with the ring's newest key; decrypts with the key it names.

    ``decode`` passes payloads that are not ``binary/encrypted`` through unchanged, so that
    workflows started before encryption was turned on keep running (and their histories keep
    replaying). A payload that does not decrypt (unknown key id, tampered, truncated) raises
    :class:`~payments.keyring.DecryptionFailed`; its message names at most the key id.
    """

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(payload) for payload in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        key_id, blob = self._ring.encrypt(
            payload.SerializeToString(), associated_data=ASSOCIATED_DATA
        )
        return Payload(
            metadata={ENCODING: ENCRYPTED_ENCODING, KEY_ID: key_id.encode()},
            data=blob,
        )

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get(ENCODING) != ENCRYPTED_ENCODING:
            return payload
        raw_key_id = payload.metadata.get(KEY_ID)
        if raw_key_id is None:
            raise DecryptionFailed(f"an encrypted payload has no {KEY_ID} metadata")
        key_id = raw_key_id.decode("utf-8", errors="replace")
        if not _PRINTABLE_KEY_ID.match(key_id):
            # Never repeat it: it came with the payload, not from our configuration.
            raise DecryptionFailed(f"an encrypted payload has a malformed {KEY_ID}")
        if key_id not in self._ring.ids():
            raise DecryptionFailed(
                f"no key '{key_id}' in the payload key ring (was it rotated out too early?)"
            )
        plaintext = self._ring.decrypt(key_id, payload.data, associated_data=ASSOCIATED_DATA)
        try:
            return Payload.FromString(plaintext)
        except DecodeError:
            raise DecryptionFailed(
                f"a payload decrypted with key '{key_id}' is not a Temporal payload"
            ) from None


def data_converter(ring: KeyRing) -> temporalio.converter.DataConverter:
    """The SDK's default converter with :class:`EncryptionCodec`, and failures whose message
    and stack trace move into encoded (so encrypted) attributes: a decline reason or an
    exception text is no more readable on the server than a payment request.

    Every client and worker of a namespace must use it with the same ring (extra older keys
    are fine): a worker without it cannot read what an encrypting client started.
    """
    return dataclasses.replace(
        temporalio.converter.DataConverter.default,
        payload_codec=EncryptionCodec(ring),
        failure_converter_class=temporalio.converter.DefaultFailureConverterWithEncodedAttributes,
    )


def _is_strict_base64(value: str) -> bool:
    # The protobuf parser silently drops characters outside the alphabet ("!!!" becomes b""):
    # check first, so that a mangled payload is refused rather than decoded as something else.
    if not _BASE64.match(value):
        return False
    unpadded = value.rstrip("=")
    if len(unpadded) % 4 == 1:
        return False
    standard = unpadded.replace("-", "+").replace("_", "/")
    try:
        base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _checked_body(body: object) -> dict[str, Any]:
    """The body of a remote codec request, its shape and base64 checked. Raises
    InvalidRequest whose message never repeats the body."""
    if not isinstance(body, dict):
        raise InvalidRequest('the body must be a JSON object: {"payloads": [...]}', field="body")
    payloads = body.get("payloads")
    if not isinstance(payloads, list):
        raise InvalidRequest('the body needs a "payloads" list', field="payloads")
    if len(payloads) > MAX_REMOTE_PAYLOADS:
        raise InvalidRequest(
            f"at most {MAX_REMOTE_PAYLOADS} payloads per request", field="payloads"
        )
    for index, payload in enumerate(payloads):
        if not isinstance(payload, dict):
            raise InvalidRequest(f"payload {index} is not an object", field="payloads")
        metadata = payload.get("metadata", {})
        values = list(metadata.values()) if isinstance(metadata, dict) else []
        for value in [payload.get("data", ""), *values]:
            if isinstance(value, str) and not _is_strict_base64(value):
                raise InvalidRequest(
                    f"payload {index} holds a value that is not base64", field="payloads"
                )
    return body


async def apply_codec(
    codec: temporalio.converter.PayloadCodec,
    operation: Literal["encode", "decode"],
    body: object,
) -> dict[str, object]:
    """Temporal's remote codec protocol: ``body`` is the protobuf JSON form of
    ``temporal.api.common.v1.Payloads`` (``{"payloads": [{"metadata": {"encoding": <base64>},
    "data": <base64>}]}``); the answer has the same form, with every payload encoded or decoded.

    Raises :class:`~payments.errors.InvalidRequest` (a 422 at the API) for a malformed body
    (not an object, no ``payloads`` list, more than :data:`MAX_REMOTE_PAYLOADS`, unknown fields,
    bad base64) and for a payload that does not decrypt. Messages never repeat payload content.
    """
    checked = _checked_body(body)
    try:
        message = ParseDict(checked, Payloads())
    except ParseError:
        # ParseError's text quotes the offending input: say what is expected instead.
        raise InvalidRequest(
            "the body is not Payloads in protobuf JSON form "
            '({"payloads": [{"metadata": {"encoding": <base64>}, "data": <base64>}]})',
            field="payloads",
        ) from None
    try:
        if operation == "encode":
            await codec.encode_wrapper(message)
        else:
            await codec.decode_wrapper(message)
    except DecryptionFailed as exc:
        raise InvalidRequest(exc.message, field="payloads") from None
    answer: dict[str, object] = MessageToDict(message)
    answer.setdefault("payloads", [])  # MessageToDict leaves out an empty list
    return answer
