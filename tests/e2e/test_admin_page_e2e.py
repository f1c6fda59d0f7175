"""The operators' page in a real browser (headless Chromium, Debian's package): signing in
with an admin key, the charts, the review queue, the failed payments linking to their runs in
the Temporal UI, nothing asked of any other server. A screenshot is saved under
test-artifacts/."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_payments_e2e import pay
from tests.support.chromium import browser_page, chromium_path

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def save(png: bytes, path: Path) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(png)


async def test_an_operator_signs_in_and_sees_trends_and_failed_payments(
    api: httpx.AsyncClient, stack: Stack, tmp_path: Path
) -> None:
    chromium_path()  # skip early, before making payments, where there is no browser
    paid = await pay(api)
    declined = await pay(api, amount="2000.00")
    assert (paid["payment_status"], declined["payment_status"]) == ("success", "failure")
    origin = stack.endpoints.api_url

    async with browser_page(tmp_path / "profile") as page:
        await page.goto(f"{origin}/admin/")
        assert await page.evaluate("!!document.getElementById('login')")
        key = stack.keys["admin"]
        await page.evaluate(
            f"document.getElementById('key').value = {key!r};"
            "document.querySelector('#login button').click()"
        )
        await page.wait_for("!!document.getElementById('dashboard')")

        assert int(await page.evaluate("document.getElementById('count').textContent")) >= 2
        bars = await page.evaluate("document.querySelectorAll('#payments-chart rect').length")
        assert bars >= 2
        assert await page.evaluate("document.querySelectorAll('#volume-chart polyline').length")
        links = await page.evaluate(
            "[...document.querySelectorAll('#failed a.run')].map(a => a.href)"
        )
        run = f"{stack.endpoints.temporal_ui_url}/namespaces/{stack.settings.temporal.namespace}"
        assert f"{run}/workflows/payment-{declined['payment_id']}" in links
        # The review queue's table (this stack's thresholds hold nothing: "None waits.").
        assert await page.evaluate("!!document.querySelector('#reviews')")
        # The session cookie is HttpOnly: the page's script cannot read it.
        assert "payments_admin_session" not in await page.evaluate("document.cookie")
        # Charts drawn without any request to another server.
        assert page.requested, "no request recorded"
        assert all(url.startswith(origin) for url in page.requested), page.requested
        png = await page.screenshot()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    shot = ARTIFACTS / f"admin-page-{stack.settings.database.url.split(':')[0]}.png"
    await asyncio.to_thread(save, png, shot)
