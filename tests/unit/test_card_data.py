"""Recognising card numbers: what counts, what does not, and where in a JSON value it is."""

from __future__ import annotations

import re
import time
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.card_data import (
    contains_card_number,
    find_card_numbers,
    first_card_number_path,
    luhn_valid,
    mask_card_numbers,
)

# Braintree's documented test cards, plus a 19-digit Luhn-valid number in the Visa range.
TEST_CARDS = [
    "4111111111111111",  # Visa
    "5555555555554444",  # Mastercard
    "378282246310005",  # American Express (15 digits)
    "4000111111111115",  # Visa, processor declined
    "6011111111111117",  # Discover
    "3530111333300000",  # JCB
    "4111111111111111110",  # 19 digits
]
MASK = "[card-number-redacted]"


def _grouped(card: str, size: int, separator: str) -> str:
    return separator.join(card[i : i + size] for i in range(0, len(card), size))


@pytest.mark.parametrize("card", TEST_CARDS)
def test_test_cards_pass_luhn_and_are_found_alone(card: str) -> None:
    assert luhn_valid(card)
    assert find_card_numbers(card) == [(0, len(card))]
    assert contains_card_number(card)


@pytest.mark.parametrize("card", TEST_CARDS)
@pytest.mark.parametrize("separator", [" ", "-"])
def test_grouped_with_spaces_or_dashes(card: str, separator: str) -> None:
    text = f"card: {_grouped(card, 4, separator)} exp 12/27"
    assert mask_card_numbers(text) == f"card: {MASK} exp 12/27"


def test_amex_layout_and_mixed_separators() -> None:
    assert mask_card_numbers("3782 822463 10005") == MASK
    assert mask_card_numbers("4111-1111 1111-1111") == MASK


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card is 4111111111111111.", f"my card is {MASK}."),
        ("4111111111111111, then 5555555555554444!", f"{MASK}, then {MASK}!"),
        (
            '{"note": "4111111111111111", "amount": "49.99"}',
            f'{{"note": "{MASK}", "amount": "49.99"}}',
        ),
        ('{"n":5555555555554444}', f'{{"n":{MASK}}}'),
        ("/v1/cards/4111111111111111/verify?x=1", f"/v1/cards/{MASK}/verify?x=1"),
        ("pan=4111-1111-1111-1111&amount=49.99", f"pan={MASK}&amount=49.99"),
        ("card:4111111111111111;", f"card:{MASK};"),
        # A card followed by a year (one run of groups): the card's groups are found.
        ("4111 1111 1111 1111 2027", f"{MASK} 2027"),
        # Fullwidth digits (U+FF10..U+FF19) are digits.
        ("".join(chr(ord(digit) + 0xFEE0) for digit in "4111111111111111"), MASK),
    ],
)
def test_masking_keeps_the_surrounding_text(text: str, expected: str) -> None:
    assert mask_card_numbers(text) == expected


def test_spans_point_at_the_numbers() -> None:
    text = "a 4111 1111 1111 1111 b 378282246310005"
    spans = find_card_numbers(text)
    assert [text[start:end] for start, end in spans] == ["4111 1111 1111 1111", "378282246310005"]


def test_custom_replacement_and_untouched_text() -> None:
    assert mask_card_numbers("x 4111111111111111", "****") == "x ****"
    innocent = "order 1234 for 49.99 USD"
    assert mask_card_numbers(innocent) is innocent


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # Luhn-invalid
        "order 1234567812345678",  # Luhn-invalid 16 digits
        "4111 1111 1111 1112",
        "411111111117",  # 12 digits, Luhn-valid
        "41111111111111111115",  # 20 digits, Luhn-valid
        # Decimals: the digits are a valid card number, but part of a number.
        "rate 1.0912345678901234",
        "rate 1.4111111111111111",
        "amount 123.4567890123456",
        "0.5555555555554444",
        "4111111111111111.25",
        "4111111111111111.0",
        # Separators other than a single space or dash.
        "4111  1111  1111  1111",
        "4111.1111.1111.1111",
        "4111_1111_1111_1111",
        "",
        "no digits at all",
    ],
)
def test_not_card_numbers(text: str) -> None:
    assert find_card_numbers(text) == []
    assert not contains_card_number(text)
    assert mask_card_numbers(text) == text


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("0", True), ("79927398713", True), ("79927398710", False), ("", False), ("4111 1111", False)],
)
def test_luhn_valid(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


def test_first_card_number_path_in_nested_json() -> None:
    assert first_card_number_path({"payment_token": "4111111111111111"}) == "payment_token"
    body = {
        "amount": "49.99",
        "items": [
            {"note": "gift"},
            {"note": "1.0912345678901234"},
            {"note": "4111 1111 1111 1111"},
        ],
    }
    assert first_card_number_path(body) == "items.2.note"
    assert first_card_number_path({"metadata": {"4111111111111111": "x"}}) == "metadata.[key]"
    assert first_card_number_path({"5555555555554444": 1}) == "[key]"
    assert first_card_number_path({"n": [1, 4111111111111111]}) == "n.1"
    assert first_card_number_path("4111111111111111") == "$"


def test_first_card_number_path_reports_the_first_in_document_order() -> None:
    body = {"a": {"b": "nothing", "c": ["5555555555554444"]}, "d": "4111111111111111"}
    assert first_card_number_path(body) == "a.c.0"
    # A key is checked before its own value.
    assert first_card_number_path({"x": {"4111111111111111": "5555555555554444"}}) == "x.[key]"


@pytest.mark.parametrize(
    "value",
    [
        {"amount": "49.99", "rate": "1.0912345678901234", "order_id": "ord_1234567812345678"},
        {"n": 1234567812345678, "f": 4111111111111111.5, "ok": True},
        [[], {}, "", None],
        "nothing here",
    ],
)
def test_first_card_number_path_none_without_card_numbers(value: object) -> None:
    assert first_card_number_path(value) is None


def test_first_card_number_path_survives_deep_and_cyclic_values() -> None:
    deep: object = "4111111111111111"
    for _ in range(5000):
        deep = [deep]
    assert first_card_number_path(deep) == ".".join(["0"] * 5000)
    cyclic: list[object] = []
    cyclic.append(cyclic)
    assert first_card_number_path(cyclic) is None


def test_hostile_bodies_are_scanned_quickly() -> None:
    # Many one-digit groups: every group starts several candidate stretches.
    hostile = ["1 " * 32768, "1-" * 32768, "9" * 65536, "123456789012." * 5000]
    started = time.perf_counter()
    for text in hostile:
        find_card_numbers(text)
        contains_card_number(text)
    assert time.perf_counter() - started < 2.0


# A reference model, straight from the definition: try every substring.
_CANDIDATE = re.compile(r"\d(?:[ -]?\d)*")


def _reference_masked_positions(text: str) -> set[int]:
    covered: set[int] = set()
    for start in range(len(text)):
        before = text[max(0, start - 2) : start]
        if before[-1:].isalnum() or (before[-1:] == "." and before[:1].isdecimal()):
            continue
        for end in range(start + 1, len(text) + 1):
            after = text[end : end + 2]
            if after[:1].isalnum() or (after[:1] == "." and after[1:].isdecimal()):
                continue
            if not _CANDIDATE.fullmatch(text, start, end):
                continue
            groups = re.split(r"[ -]", text[start:end])
            if len(groups) > 1 and not all(3 <= len(g) <= 6 for g in groups):
                continue  # printed cards come in groups of 3 to 6 digits
            digits = "".join(groups)
            if 13 <= len(digits) <= 19 and luhn_valid(digits):
                covered.update(range(start, end))
    return covered


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789012345678901234567890123456789 -.x", max_size=48))
def test_matches_the_definition(text: str) -> None:
    spans = find_card_numbers(text)
    assert {i for start, end in spans for i in range(start, end)} == (
        _reference_masked_positions(text)
    )
    assert all(end < next_start for (_, end), (next_start, _) in pairwise(spans))
    assert contains_card_number(text) == bool(spans)


# UUIDs whose digit-only groups hold 13 or more digits together, Luhn-valid: payment ids
# and refund ids look like these, and must never read as card numbers (they appear in paths).
@pytest.mark.parametrize(
    "identifier",
    [
        "12345678-1234-1234-1234-123456789012",
        "f255acbd-1234-5678-1234-567812345678",
        "1d403e12-2389-4510-9016-d19265935fdc",
        "e12-2389-4510-9016",
        "a4111111111111111",
        "4111111111111111b",
        "x4111-1111-1111-1111",
        "4111-1111-1111-1111y",
    ],
)
def test_ids_are_not_card_numbers(identifier: str) -> None:
    assert not contains_card_number(identifier)
    assert not contains_card_number(f"/payment/{identifier}/events")


def test_no_uuid_is_a_card_number() -> None:
    import uuid

    for _ in range(20_000):
        value = str(uuid.uuid4())
        assert not contains_card_number(value), value
    # Even all-digit ones, whatever their Luhn sums.
    for n in range(2_000):
        digits = f"{n:032d}"[::-1]
        text = f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
        assert not contains_card_number(text), text
