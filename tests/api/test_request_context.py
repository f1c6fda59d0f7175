"""Each request's id and merchant in every log line written while it is served, and its id in
the answer (X-Request-ID)."""

from __future__ import annotations

import re

import structlog
from structlog.testing import capture_logs

from tests.api.conftest import BODY, Api

# What the processes' configuration does first (payments/logging.py): context in every line.
WITH_CONTEXT = [structlog.contextvars.merge_contextvars]


async def test_a_callers_request_id_is_kept_and_names_every_line(api: Api) -> None:
    with capture_logs(processors=WITH_CONTEXT) as lines:
        # Temporal is down here: the API logs why it answers 503.
        response = await api.acme.post(
            "/initiate-payment", json=BODY, headers={"X-Request-ID": "checkout-7f3a:1"}
        )
    assert response.status_code == 503
    assert response.headers["X-Request-ID"] == "checkout-7f3a:1"
    assert lines, "the failed request logged nothing"
    for line in lines:
        assert line["request_id"] == "checkout-7f3a:1", line
        assert line["merchant_id"] == "acme", line


async def test_a_missing_or_odd_request_id_is_replaced(api: Api) -> None:
    # ... and one holding a test card number: never kept, so never logged or echoed.
    given = [None, "", "two words", "x" * 129, "<script>", "req-4111111111111111"]
    seen = set()
    for value in given:
        headers = {"X-Request-ID": value} if value is not None else {}
        response = await api.anonymous.get("/healthz", headers=headers)
        request_id = response.headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
        seen.add(request_id)
    assert len(seen) == len(given)  # a new one each time


async def test_a_request_leaves_nothing_bound_for_the_next(api: Api) -> None:
    await api.acme.post("/initiate-payment", json=BODY)
    # The in-process client runs every request in the test's own context.
    assert "merchant_id" not in structlog.contextvars.get_contextvars()
    with capture_logs(processors=WITH_CONTEXT) as lines:
        await api.anonymous.post("/initiate-payment", json=BODY)  # 401, nothing of acme's
    assert all("merchant_id" not in line for line in lines)


async def test_refusals_at_the_edge_carry_the_id_too(api: Api) -> None:
    response = await api.acme.post(
        "/initiate-payment",
        content=b"{" * 10,
        headers={"X-Request-ID": "edge-1", "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422)
    assert response.headers["X-Request-ID"] == "edge-1"
