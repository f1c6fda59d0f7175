"""Recognising primary account numbers (card numbers) in text and decoded JSON.

The one place that decides what a card number looks like: log redaction, the API's refusal
of request bodies that carry card data, and the Kafka consumers all ask here.

A card number (PAN) here is 13 to 19 decimal digits, optionally with a single space or dash
between digits ("4111 1111 1111 1111", "3782-822463-10005"), that passes the Luhn check.

- Luhn-invalid runs are not card numbers: a 16-digit order id or phone-ish number that fails
  the check is left alone, which keeps false positives (and masked log lines) down. Only about
  one random run in ten passes the check by chance.
- Digits that belong to a decimal number do not count: a run preceded by a digit or by
  "digit." (``1.0912345678901234``), or followed by a digit or by ".digit"
  (``4111111111111111.5``), is not a candidate. A sentence period after the number ("my card
  is 4111111111111111.") still counts.
- Inside a longer run of separated digit groups, every stretch of whole groups that holds 13
  to 19 digits is a candidate ("4111 1111 1111 1111 2027" holds a card number); a single
  group of 20 or more digits holds none (nothing is cut in the middle of a group).
- Any Unicode decimal digit counts as a digit (fullwidth digits are card numbers too).

Callers decode their transport first: percent-encoding, form encoding and base64 are theirs.
Everything here is linear in the length of the text (no backtracking regular expressions) and
runs on every API request body and every Kafka message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import accumulate

__all__ = [
    "contains_card_number",
    "find_card_numbers",
    "first_card_number_path",
    "luhn_valid",
    "mask_card_numbers",
]

MIN_DIGITS = 13
MAX_DIGITS = 19

# A maximal run of at least MIN_DIGITS digits, single spaces or dashes allowed between digits.
# Each step consumes a digit, so a failed attempt costs at most the run's length: linear.
_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,}")  # {MIN_DIGITS - 1,}
_SEPARATOR = re.compile(r"[ -]")
# Luhn: the value a digit contributes when it is doubled.
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
_ASCII_DIGIT_VALUES = bytes.maketrans(b"0123456789", bytes(range(10)))
_DOUBLED_VALUES = bytes.maketrans(bytes(range(10)), bytes(_DOUBLED))
# Numbers (JSON numbers, log values) below this have fewer than MIN_DIGITS digits.
_SMALLEST_CARD = 10 ** (MIN_DIGITS - 1)
_TOO_LARGE_CARD = 10**MAX_DIGITS


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` is non-empty, only decimal digits, and passes the Luhn check.

    No length rule here (``"0"`` passes); separators are not accepted.
    """
    if not digits or not digits.isdecimal():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        total += _DOUBLED[digit] if position & 1 else digit
    return total % 10 == 0


def _part_of_decimal_before(text: str, start: int) -> bool:
    """Whether the run starting at ``start`` follows "digit." (the fraction of a decimal)."""
    return start >= 2 and text[start - 1] == "." and text[start - 2].isdecimal()


def _part_of_decimal_after(text: str, end: int) -> bool:
    """Whether the run ending at ``end`` is followed by ".digit" (the integer part)."""
    return end + 1 < len(text) and text[end] == "." and text[end + 1].isdecimal()


def _spans_in_run(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Card-number spans made of whole digit groups within the run ``text[start:end]``."""
    no_start_here = _part_of_decimal_before(text, start)
    no_end_here = _part_of_decimal_after(text, end)
    run = text[start:end]
    if run.isdecimal():  # the common case: no separators, one group
        if no_start_here or no_end_here or len(run) > MAX_DIGITS or not luhn_valid(run):
            return []
        return [(start, end)]
    return _spans_in_separated_run(run, start, no_start_here, no_end_here)


def _digit_values(digits: str) -> bytes:
    """The value of each decimal digit of ``digits``, one byte each."""
    if digits.isascii():
        return digits.encode("ascii").translate(_ASCII_DIGIT_VALUES)
    return bytes(int(char) for char in digits)


def _spans_in_separated_run(
    run: str, offset: int, no_start_here: bool, no_end_here: bool
) -> list[tuple[int, int]]:
    """Spans of whole-group stretches of 13-19 digits in ``run`` that pass the Luhn check.

    ``run`` is digit groups joined by single separators; ``offset`` is its position in the text.
    Returns, for each group that starts a card number, the span to the end of the longest one
    starting there (overlaps are merged by the caller).

    A run of many one-digit groups ("1 2 3 ...") has up to seven candidate stretches per group;
    checking them one by one would cost a hostile 64 KiB body a second. Instead: the Luhn sum
    of digits[a:b] is a difference of prefix sums, so a stretch is valid when the prefix sums
    at its two ends agree modulo 10. Sweeping the start forward while remembering the latest
    end boundary seen for each residue makes every start O(1).
    """
    parts = _SEPARATOR.split(run)
    groups = len(parts)
    before = list(accumulate(map(len, parts), initial=0))  # digits before each group
    values = _digit_values("".join(parts))
    doubled = values.translate(_DOUBLED_VALUES)
    # Prefix Luhn sums for stretches whose last digit has an even index (digits at even
    # indexes count plain, odd ones doubled) and for those whose last digit's index is odd.
    even_last = bytearray(values)
    even_last[1::2] = doubled[1::2]
    odd_last = bytearray(doubled)
    odd_last[1::2] = values[1::2]
    sums_even_last = list(accumulate(even_last, initial=0))
    sums_odd_last = list(accumulate(odd_last, initial=0))

    # An end boundary j (after group j-1) gets a key 0-9 when the stretch's last digit has an
    # even index, 10-19 when odd; a stretch from boundary i is valid iff the key matches.
    latest = [-1] * 20  # latest end boundary seen so far with each key
    last_end = groups - 1 if no_end_here else groups
    spans: list[tuple[int, int]] = []
    next_end = 1
    for first in range(1 if no_start_here else 0, groups):
        low = before[first]
        while next_end <= last_end and before[next_end] <= low + MAX_DIGITS:
            high = before[next_end]
            if (high - 1) % 2 == 0:
                latest[sums_even_last[high] % 10] = next_end
            else:
                latest[10 + sums_odd_last[high] % 10] = next_end
            next_end += 1
        end = -1
        for candidate in (latest[sums_even_last[low] % 10], latest[10 + sums_odd_last[low] % 10]):
            if candidate > end and before[candidate] >= low + MIN_DIGITS:
                end = candidate
        if end > 0:
            # Group g starts at before[g] + g in the run: one separator before each group.
            spans.append((offset + low + first, offset + before[end] + end - 1))
    return spans


def find_card_numbers(text: str) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the card numbers in ``text``, in order, never overlapping.

    Candidates that overlap (two valid stretches of the same run of groups) are merged into one
    span, so masking every span leaves no complete card number behind.
    """
    found: list[tuple[int, int]] = []
    for run in _RUN.finditer(text):
        for start, end in _spans_in_run(text, run.start(), run.end()):
            if found and start <= found[-1][1]:
                found[-1] = (found[-1][0], max(found[-1][1], end))
            else:
                found.append((start, end))
    return found


def contains_card_number(text: str) -> bool:
    """Whether ``text`` holds at least one card number (see the module docstring)."""
    return any(_spans_in_run(text, run.start(), run.end()) for run in _RUN.finditer(text))


def mask_card_numbers(text: str, replacement: str = "[card-number-redacted]") -> str:
    """``text`` with every card number replaced by ``replacement``; other text untouched.

    Returns ``text`` itself when it holds no card number.
    """
    spans = find_card_numbers(text)
    if not spans:
        return text
    pieces: list[str] = []
    position = 0
    for start, end in spans:
        pieces.append(text[position:start])
        pieces.append(replacement)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _number_is_card_number(value: int | float) -> bool:
    """An int (or a float holding a whole number) whose digits are a card number."""
    if isinstance(value, float):
        if not value.is_integer():
            return False
        value = int(value)
    return _SMALLEST_CARD <= abs(value) < _TOO_LARGE_CARD and luhn_valid(str(abs(value)))


def first_card_number_path(value: object) -> str | None:
    """Dotted path of the first card number in a decoded JSON value, None if it holds none.

    Walks dicts (keys too), lists, tuples, strings and numbers (an int, or a float holding a
    whole number, whose digits form a card number counts) depth first in document order, and
    checks each key before its value. Paths: ``"payment_token"``, ``"items.2.note"``; a dict
    key that holds a card number is reported as its parent's path plus ``[key]``
    (``"metadata.[key]"``, or ``"[key]"`` at the top level), so the path never repeats the
    number; ``"$"`` when ``value`` itself is the string or number. Other types are ignored;
    a container met twice (shared or cyclic) is walked once.
    """
    # Explicit stack instead of recursion: a deeply nested body cannot exhaust the C stack.
    stack: list[tuple[object, tuple[str, ...], bool]] = [(value, (), False)]
    seen: set[int] = set()
    while stack:
        node, path, is_key = stack.pop()
        if isinstance(node, str):
            if contains_card_number(node):
                return ".".join((*path, "[key]")) if is_key else ".".join(path) or "$"
        elif isinstance(node, bool):
            continue
        elif isinstance(node, int | float):
            if _number_is_card_number(node):
                return ".".join((*path, "[key]")) if is_key else ".".join(path) or "$"
        elif isinstance(node, Mapping | list | tuple):
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, Mapping):
                entries: list[tuple[object, tuple[str, ...], bool]] = []
                for key, child in node.items():
                    # The key is checked first, then its value (popped in this order).
                    entries.append((key, path, True))
                    entries.append((child, (*path, str(key)), False))
                stack.extend(reversed(entries))
            else:
                stack.extend(
                    (child, (*path, str(index)), False)
                    for index, child in reversed(list(enumerate(node)))
                )
    return None
