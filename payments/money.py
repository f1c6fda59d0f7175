"""Money as integer minor units plus an ISO 4217 currency.

Inside the service an amount is always an ``int`` of minor units (cents, yen, fils); decimal
strings exist only at the edges (the HTTP API, Kafka messages, the gateway's XML).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from payments.errors import InvalidAmount, UnsupportedCurrency

# ISO 4217 minor units for the currencies a card gateway commonly settles.
# Source: ISO 4217 amendment list (JPY/KRW have none, the dinars three).
MINOR_UNITS: dict[str, int] = {
    "AED": 2, "ARS": 2, "AUD": 2, "BGN": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2,
    "CLP": 0, "CNY": 2, "COP": 2, "CZK": 2, "DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2,
    "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0,
    "KRW": 0, "KWD": 3, "MXN": 2, "MYR": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PHP": 2,
    "PLN": 2, "QAR": 2, "RON": 2, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2, "TND": 3,
    "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2, "VND": 0, "ZAR": 2,
}  # fmt: skip

# No single payment may exceed this many major units in any currency: far above any real
# checkout, so anything larger is a client bug (or an attack), refused before it is stored.
MAX_MAJOR_UNITS = 10**9


def minor_units(currency: str) -> int:
    """Number of decimal places of ``currency``; raises UnsupportedCurrency for unknown codes."""
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise UnsupportedCurrency(f"unknown currency {currency!r}", field="currency") from None


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units of ``currency``. Immutable; never a float."""

    minor: int
    currency: str

    @classmethod
    def parse(cls, amount: str | Decimal | int, currency: str, *, field: str = "amount") -> Money:
        """Parse a decimal amount as the API and Kafka messages carry it ("49.99").

        Refuses what a client must fix: not a number, zero or negative, more decimals than the
        currency has, or more than MAX_MAJOR_UNITS.
        """
        places = minor_units(currency)
        if isinstance(amount, float):  # floats lose cents; the API never produces them
            raise InvalidAmount("amount must be a decimal string, not a float", field=field)
        try:
            value = Decimal(str(amount).strip())
        except InvalidOperation:
            raise InvalidAmount(f"amount {amount!r} is not a decimal number", field=field) from None
        if not value.is_finite():
            raise InvalidAmount("amount must be a finite number", field=field)
        if value <= 0:
            raise InvalidAmount("amount must be greater than zero", field=field)
        if value > MAX_MAJOR_UNITS:
            raise InvalidAmount(f"amount must not exceed {MAX_MAJOR_UNITS} {currency}", field=field)
        exponent = value.normalize().as_tuple().exponent
        assert isinstance(exponent, int)  # finite decimals have an int exponent
        if -exponent > places:
            raise InvalidAmount(
                f"{currency} amounts have at most {places} decimal places", field=field
            )
        return cls(int(value.scaleb(places)), currency)

    def to_decimal(self) -> Decimal:
        return Decimal(self.minor).scaleb(-minor_units(self.currency))

    def __str__(self) -> str:
        """The decimal string with exactly the currency's places: "49.99", "1000", "1.500"."""
        places = minor_units(self.currency)
        return f"{self.to_decimal():.{places}f}"
