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
- Digits that continue a word are not a candidate either: a run right after or before a
  letter ("a1f4…", "…5678abcd", as in UUIDs and other ids) does not start or end one there.
- Separated, a card number is printed in groups of 3 to 6 digits (4-4-4-4, 4-6-5, 4-4-4-4-3);
  inside a longer run of such groups every stretch of 13 to 19 digits is a candidate ("4111
  1111 1111 1111 2027" holds one). A single group of 13-19 digits is one on its own; a group
  of 20 or more digits holds none (nothing is cut in the middle of a group), and groups of
  other sizes never join one (a UUID's 8-4-4-4-12 never reads as a card number).
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
# The digits of one printed group, when a card number is written in groups.
GROUP_MIN = 3
GROUP_MAX = 6

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


def _no_start_before(text: str, start: int) -> bool:
    """Whether a card number cannot start at ``start``: the digits continue a word
    ("a1f4…" in a UUID) or are the fraction of a decimal ("1.0912…")."""
    if start == 0:
        return False
    before = text[start - 1]
    return before.isalpha() or (before == "." and start >= 2 and text[start - 2].isdecimal())


def _no_end_after(text: str, end: int) -> bool:
    """Whether a card number cannot end at ``end``: a word goes on ("…5678abcd") or this is
    the integer part of a decimal ("4111….5"). A sentence period does not count."""
    if end >= len(text):
        return False
    after = text[end]
    return after.isalpha() or (after == "." and end + 1 < len(text) and text[end + 1].isdecimal())


def _spans_in_run(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Card-number spans within the run ``text[start:end]`` of digit groups."""
    no_start_here = _no_start_before(text, start)
    no_end_here = _no_end_after(text, end)
    run = text[start:end]
    if run.isdecimal():  # the common case: no separators, one group
        if no_start_here or no_end_here or len(run) > MAX_DIGITS or not luhn_valid(run):
            return []
        return [(start, end)]
    return _spans_in_separated_run(run, start, no_start_here, no_end_here)


def _spans_in_separated_run(
    run: str, offset: int, no_start_here: bool, no_end_here: bool
) -> list[tuple[int, int]]:
    """Spans of card numbers in ``run`` (digit groups joined by single separators; ``offset``
    is its position in the text), for each group that starts one, to the end of the longest.

    A card number here is either one whole group of 13-19 digits ("4111111111111111
    5555555555554444" holds two), or several groups of 3 to 6 digits each, 13-19 digits in
    all — the ways cards are printed (4-4-4-4, 4-6-5, 4-6-4, 4-4-4-4-3). Groups of other
    sizes never join one: an id such as a UUID (8-4-4-4-12, and letters around) never reads
    as a card number. At most six groups make one, so the scan is linear in the run.
    """
    parts = _SEPARATOR.split(run)
    positions = list(accumulate((len(part) + 1 for part in parts), initial=0))
    last = len(parts) - 1
    spans: list[tuple[int, int]] = []
    for first, part in enumerate(parts):
        if first == 0 and no_start_here:
            continue
        longest = -1
        if MIN_DIGITS <= len(part) <= MAX_DIGITS and luhn_valid(part):
            longest = first
        elif GROUP_MIN <= len(part) <= GROUP_MAX:
            digits = part
            for following in range(first + 1, len(parts)):
                size = len(parts[following])
                if not GROUP_MIN <= size <= GROUP_MAX or len(digits) + size > MAX_DIGITS:
                    break
                digits += parts[following]
                if len(digits) >= MIN_DIGITS and luhn_valid(digits):
                    longest = following
        if longest == last and no_end_here:
            longest = -1  # (a shorter stretch ending earlier would have been found above)
        if longest >= 0:
            spans.append(
                (offset + positions[first], offset + positions[longest] + len(parts[longest]))
            )
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
