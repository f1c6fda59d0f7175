"""Exchange rates (admin): what a payment presented in a currency without a merchant account
is charged at. Each PUT appends a rate with its timestamp and the key that set it; payments
keep the rate they used. A rate that moves more than PAYMENTS_RATE_CHANGE_LIMIT_PERCENT from
the pair's previous one needs ``"override": true`` (a mistyped rate would reprice every
converted payment)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from fastapi import APIRouter

from api.deps import AdminDep, ContainerDep, ExchangeRatesDep
from api.errors import ERRORS
from api.schemas import ExchangeRateIn, ExchangeRateOut
from payments.db.models import ExchangeRate
from payments.errors import InvalidRequest, NotFound, RateChangeTooLarge
from payments.money import minor_units
from payments.requests import CurrencyCode

router = APIRouter(tags=["admin"])


@router.put("/exchange-rates/{base}/{quote}", response_model=ExchangeRateOut, responses=ERRORS)
async def set_rate(
    base: CurrencyCode,
    quote: CurrencyCode,
    body: ExchangeRateIn,
    rates: ExchangeRatesDep,
    principal: AdminDep,
    container: ContainerDep,
) -> ExchangeRateOut:
    minor_units(base)
    minor_units(quote)
    rate = Decimal(body.rate)
    if base == quote or rate <= 0:
        raise InvalidRequest("a rate converts between two currencies and is positive", field="rate")
    previous = await asyncio.to_thread(rates.current, base, quote)
    limit = Decimal(str(container.settings.policy.rate_change_limit_percent))
    if previous is not None and not body.override:
        change = abs(rate - Decimal(previous.rate)) / Decimal(previous.rate) * 100
        if change > limit:
            raise RateChangeTooLarge(
                f"the rate moves {change:.1f}% from the current {previous.rate} (more than "
                f'{limit}%): send "override": true if that is intended',
                field="rate",
            )
    stored = await asyncio.to_thread(
        rates.add,
        ExchangeRate(base=base, quote=quote, rate=body.rate, set_by=principal.key_id),
    )
    return ExchangeRateOut.of(stored)


@router.get("/exchange-rates/{base}/{quote}", response_model=ExchangeRateOut, responses=ERRORS)
async def get_rate(
    base: CurrencyCode, quote: CurrencyCode, rates: ExchangeRatesDep, _admin: AdminDep
) -> ExchangeRateOut:
    stored = await asyncio.to_thread(rates.current, base, quote)
    if stored is None:
        raise NotFound(f"no {base}/{quote} rate", field="base")
    return ExchangeRateOut.of(stored)
