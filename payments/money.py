"""Money as integer minor units plus an ISO 4217 currency.

Inside the service an amount is always an ``int`` of minor units (cents, yen, fils); decimal
strings exist only at the edges (the HTTP API, Kafka messages, the gateway's XML).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from payments.errors import InvalidAmount, UnsupportedCurrency

# ISO 4217 (list one, active codes) and each currency's minor units: most have two, the yen,
# won and several francs none, the dinars of Bahrain, Iraq, Jordan, Kuwait, Libya and Tunisia
# and the rial of Oman three, the unidades de fomento four.
MINOR_UNITS: dict[str, int] = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "ANG": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2,
    "AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2,
    "BOB": 2, "BOV": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2, "CAD": 2,
    "CDF": 2, "CHE": 2, "CHF": 2, "CHW": 2, "CLF": 4, "CLP": 0, "CNY": 2, "COP": 2, "COU": 2,
    "CRC": 2, "CUP": 2, "CVE": 2, "CZK": 2, "DJF": 0, "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2,
    "ERN": 2, "ETB": 2, "EUR": 2, "FJD": 2, "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2,
    "GMD": 2, "GNF": 0, "GTQ": 2, "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2,
    "ILS": 2, "INR": 2, "IQD": 3, "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0, "KES": 2,
    "KGS": 2, "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2,
    "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3, "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2,
    "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2, "MVR": 2, "MWK": 2, "MXN": 2, "MXV": 2,
    "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2, "NPR": 2, "NZD": 2, "OMR": 3,
    "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2, "PYG": 0, "QAR": 2, "RON": 2,
    "RSD": 2, "RUB": 2, "RWF": 0, "SAR": 2, "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2,
    "SHP": 2, "SLE": 2, "SOS": 2, "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2,
    "THB": 2, "TJS": 2, "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2,
    "UAH": 2, "UGX": 0, "USD": 2, "USN": 2, "UYI": 0, "UYU": 2, "UYW": 4, "UZS": 2, "VED": 2,
    "VES": 2, "VND": 0, "VUV": 0, "WST": 2, "XAF": 0, "XCD": 2, "XOF": 0, "XPF": 0, "YER": 2,
    "ZAR": 2, "ZMW": 2, "ZWG": 2,
}  # fmt: skip

# No single payment may exceed this many major units in any currency: far above any real
# checkout, so anything larger is a client bug (or an attack), refused before it is stored.
MAX_MAJOR_UNITS = 10**9

# What an amount from outside may look like: ASCII digits, then optionally "." and more of
# them ("49.99", "1000"); a sign is read so that "-1" is told it must be greater than zero.
# Decimal() also reads "1_000", "1e3", "NaN" and the digits of every script ("\u0661\u0660" is
# 10), which the gateway, the Order Service and the readers of our events would read
# differently, or not at all.
PLAIN_DECIMAL = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


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

        Refuses what a client must fix: not a plain decimal (PLAIN_DECIMAL), zero or
        negative, more decimals than the currency has, or more than MAX_MAJOR_UNITS.
        """
        places = minor_units(currency)
        if isinstance(amount, float):  # floats lose cents; the API never produces them
            raise InvalidAmount("amount must be a decimal string, not a float", field=field)
        if isinstance(amount, str) and not PLAIN_DECIMAL.fullmatch(amount.strip()):
            # Not echoed: the value may be anything, even a card number.
            raise InvalidAmount(
                'amount is not a decimal number such as "49.99" or "1000" (ASCII digits, '
                'then optionally "." and decimals)',
                field=field,
            )
        value = Decimal(amount.strip()) if isinstance(amount, str) else Decimal(amount)
        if not value.is_finite():  # a Decimal argument may be NaN or infinite
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
