from decimal import Decimal

import pytest

from payments.errors import InvalidAmount, UnsupportedCurrency
from payments.money import Money


@pytest.mark.parametrize(
    ("amount", "currency", "minor", "text"),
    [
        ("49.99", "USD", 4999, "49.99"),
        ("49.9", "USD", 4990, "49.90"),
        ("1000", "JPY", 1000, "1000"),
        ("1.5", "KWD", 1500, "1.500"),
        ("0.001", "KWD", 1, "0.001"),
        (" 7 ", "EUR", 700, "7.00"),
        (12, "USD", 1200, "12.00"),
        (Decimal("0.10"), "USD", 10, "0.10"),
    ],
)
def test_parse_and_render(amount: str, currency: str, minor: int, text: str) -> None:
    money = Money.parse(amount, currency)
    assert money.minor == minor
    assert str(money) == text


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("0", "USD", "greater than zero"),
        ("-1.00", "USD", "greater than zero"),
        ("1.001", "USD", "at most 2 decimal places"),
        ("1.5", "JPY", "at most 0 decimal places"),
        ("abc", "USD", "not a decimal number"),
        (Decimal("NaN"), "USD", "finite"),
        ("1000000000.01", "USD", "must not exceed"),
    ],
)
def test_parse_refuses(amount: str, currency: str, message: str) -> None:
    with pytest.raises(InvalidAmount, match=message) as caught:
        Money.parse(amount, currency)
    assert caught.value.field == "amount"


@pytest.mark.parametrize(
    "amount",
    [
        "1_000",  # Python's digit grouping
        "1e3",
        "1E3",
        "1e30",
        "NaN",
        "Infinity",
        "\u0661\u0660",  # Arabic-Indic digits: 10 to Decimal()
        "\uff11\uff10",  # fullwidth digits
        "\u0967\u0966",  # Devanagari digits
        ".5",
        "5.",
        "1.2.3",
        "1 000",
        "1,000",
        "0x10",
    ],
)
def test_only_plain_decimals_are_amounts(amount: str) -> None:
    # Decimal() reads all of these; the gateway, the Order Service and every reader of an
    # event would not, or would read another amount.
    with pytest.raises(InvalidAmount, match="not a decimal number") as caught:
        Money.parse(amount, "USD")
    assert caught.value.field == "amount"


def test_unknown_currency_names_the_field() -> None:
    with pytest.raises(UnsupportedCurrency) as caught:
        Money.parse("1.00", "XXX")
    assert caught.value.field == "currency"


def test_float_is_refused() -> None:
    with pytest.raises(InvalidAmount):
        Money.parse(0.1, "USD")  # type: ignore[arg-type]
