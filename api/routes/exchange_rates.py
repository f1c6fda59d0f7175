"""Exchange rates (admin): what a payment presented in a currency without a merchant account
is charged at. Each PUT appends a rate with its timestamp; payments keep the rate they used."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from fastapi import APIRouter

from api.deps import RepositoryDep
from api.routes.payments import ERRORS
from api.schemas import ExchangeRateIn, ExchangeRateOut
from payments.db.models import ExchangeRate
from payments.errors import InvalidRequest, NotFound
from payments.money import minor_units

router = APIRouter(tags=["admin"])


@router.put("/exchange-rates/{base}/{quote}", response_model=ExchangeRateOut, responses=ERRORS)
async def set_rate(
    base: str, quote: str, body: ExchangeRateIn, repository: RepositoryDep
) -> ExchangeRateOut:
    base, quote = base.upper(), quote.upper()
    minor_units(base)
    minor_units(quote)
    if base == quote or Decimal(body.rate) <= 0:
        raise InvalidRequest("a rate converts between two currencies and is positive", field="rate")
    stored = await asyncio.to_thread(
        repository.add_rate, ExchangeRate(base=base, quote=quote, rate=body.rate)
    )
    return ExchangeRateOut(base=base, quote=quote, rate=stored.rate, as_of=stored.as_of)


@router.get("/exchange-rates/{base}/{quote}", response_model=ExchangeRateOut, responses=ERRORS)
async def get_rate(base: str, quote: str, repository: RepositoryDep) -> ExchangeRateOut:
    base, quote = base.upper(), quote.upper()
    stored = await asyncio.to_thread(repository.current_rate, base, quote)
    if stored is None:
        raise NotFound(f"no {base}/{quote} rate", field="base")
    return ExchangeRateOut(base=base, quote=quote, rate=stored.rate, as_of=stored.as_of)
