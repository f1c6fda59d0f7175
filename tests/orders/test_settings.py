"""ORDER_SERVICE_* settings: an empty URL means "no Order Service"."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from payments.config import OrderServiceSettings, Settings


def test_without_url_there_is_no_order_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDER_SERVICE_URL", raising=False)
    assert Settings().orders.url is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", None), ("  ", None), ("http://orders:8070/", "http://orders:8070")],
)
def test_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str | None
) -> None:
    monkeypatch.setenv("ORDER_SERVICE_URL", value)
    monkeypatch.setenv("ORDER_SERVICE_TIMEOUT_SECONDS", "1.5")

    settings = Settings().orders

    assert settings.url == expected
    assert settings.timeout_seconds == 1.5


def test_a_url_without_http_scheme_is_refused() -> None:
    with pytest.raises(ValidationError, match="http://"):
        OrderServiceSettings(url="orders:8070")
