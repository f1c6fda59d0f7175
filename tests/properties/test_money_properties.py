"""Property tests of amounts: every amount a currency can hold renders and parses back to
itself, whatever the currency's exponent (0 for JPY, 2 for USD, 3 for KWD, 4 for CLF)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.errors import InvalidAmount
from payments.money import MAX_MAJOR_UNITS, MINOR_UNITS, Money

CURRENCIES = sorted(MINOR_UNITS)
EXPONENTS = sorted(set(MINOR_UNITS.values()))
# One currency per exponent, and every currency somewhere.
BY_EXPONENT = {e: [c for c in CURRENCIES if MINOR_UNITS[c] == e] for e in EXPONENTS}


def amounts(currency: str) -> st.SearchStrategy[int]:
    return st.integers(min_value=1, max_value=MAX_MAJOR_UNITS * 10 ** MINOR_UNITS[currency])


@pytest.mark.parametrize("exponent", EXPONENTS)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_render_then_parse_is_the_identity(exponent: int, data: st.DataObject) -> None:
    currency = data.draw(st.sampled_from(BY_EXPONENT[exponent]))
    minor = data.draw(amounts(currency))
    money = Money(minor, currency)
    text = str(money)
    assert Money.parse(text, currency) == money
    # Exactly the currency's places, never a float's rounding.
    places = len(text.split(".")[1]) if "." in text else 0
    assert places == exponent


@settings(max_examples=300, deadline=None)
@given(currency=st.sampled_from(CURRENCIES), data=st.data())
def test_parse_then_render_keeps_the_value(currency: str, data: st.DataObject) -> None:
    exponent = MINOR_UNITS[currency]
    places = data.draw(st.integers(min_value=0, max_value=exponent))
    units = data.draw(st.integers(min_value=1, max_value=MAX_MAJOR_UNITS * 10**places))
    text = str(Decimal(units).scaleb(-places))  # "12.5", "7", "0.001"...
    money = Money.parse(text, currency)
    assert money.to_decimal() == Decimal(text)
    assert Money.parse(str(money), currency) == money


@settings(max_examples=200, deadline=None)
@given(currency=st.sampled_from(CURRENCIES), data=st.data())
def test_more_places_than_the_currency_has_are_refused(currency: str, data: st.DataObject) -> None:
    exponent = MINOR_UNITS[currency]
    extra = data.draw(st.integers(min_value=1, max_value=4))
    units = data.draw(st.integers(min_value=1, max_value=10**9).filter(lambda u: u % 10 != 0))
    text = str(Decimal(units).scaleb(-(exponent + extra)))
    with pytest.raises(InvalidAmount):
        Money.parse(text, currency)
