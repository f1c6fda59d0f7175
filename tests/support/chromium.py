"""Headless Chromium (Debian's ``chromium`` package), driven over the DevTools protocol: open
a page, run script in it, list the requests it made, take a screenshot."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

REQUIRE_CHROMIUM = os.environ.get("TEST_REQUIRE_CHROMIUM") == "1"
INSTALL_HINT = "Chromium is not installed: apt-get install chromium (Debian), as .ci/run does"


def chromium_path() -> str:
    """The browser, or skip (fail where CI requires it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if REQUIRE_CHROMIUM:
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    return found


class Page:
    def __init__(self, socket: websockets.ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self.requested: list[str] = []  # every URL the page asked for

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        await self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self._socket.recv(), 30))
            if message.get("method") == "Network.requestWillBeSent":
                self.requested.append(message["params"]["request"]["url"])
            if message.get("id") == call_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        answer = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            raise AssertionError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    async def wait_for(self, expression: str, seconds: float = 15) -> Any:
        deadline = time.monotonic() + seconds
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"never true: {expression}"
            await asyncio.sleep(0.1)

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'")

    async def screenshot(self) -> bytes:
        """The whole page as PNG."""
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        return base64.b64decode(shot["data"])


@asynccontextmanager
async def browser_page(profile: Path) -> AsyncIterator[Page]:
    """A page of a headless Chromium with its own profile, closed after."""
    process = await asyncio.create_subprocess_exec(
        *[
            chromium_path(),
            "--headless=new",
            "--no-sandbox",  # containers run as root
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",  # no update checks, no safe browsing
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1280,1400",
            "about:blank",
        ],
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            assert process.returncode is None, "chromium exited at start"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            await asyncio.sleep(0.1)
        port = port_file.read_text().split()[0]
        async with httpx.AsyncClient(trust_env=False) as http:
            targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        [target] = [t for t in targets if t["type"] == "page"]
        async with websockets.connect(target["webSocketDebuggerUrl"], max_size=None) as socket:
            page = Page(socket)
            await page.call("Network.enable")
            await page.call("Page.enable")
            yield page
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
