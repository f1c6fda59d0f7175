"""Which countries use which currency: a card issued elsewhere is a "BIN country mismatch",
one of the learned score's features (the currency stands in for where the buyer is)."""

from __future__ import annotations

_EURO_AREA = frozenset(
    {
        "AUT", "BEL", "HRV", "CYP", "EST", "FIN", "FRA", "DEU", "GRC", "IRL", "ITA", "LVA",
        "LTU", "LUX", "MLT", "NLD", "PRT", "SVK", "SVN", "ESP", "AND", "MCO", "SMR", "VAT",
    }
)  # fmt: skip

COUNTRIES_OF_CURRENCY: dict[str, frozenset[str]] = {
    "USD": frozenset({"USA", "ECU", "SLV", "PAN", "PRI", "TLS", "ZWE"}),
    "EUR": _EURO_AREA,
    "GBP": frozenset({"GBR", "GGY", "JEY", "IMN"}),
    "JPY": frozenset({"JPN"}),
    "CAD": frozenset({"CAN"}),
    "AUD": frozenset({"AUS"}),
    "CHF": frozenset({"CHE", "LIE"}),
    "KWD": frozenset({"KWT"}),
}


def bin_country_mismatch(country_of_issuance: str | None, currency: str) -> bool:
    """True when the issuing country is known, the currency's countries are, and they differ."""
    countries = COUNTRIES_OF_CURRENCY.get(currency)
    if not country_of_issuance or countries is None:
        return False
    return country_of_issuance.upper() not in countries
