"""``python -m devtools.order_service``: serves the contract, and a busy port is one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from devtools import REPOSITORY_ROOT
from devtools.serving import bind_socket

STARTUP_SECONDS = 20.0


def _env(port: int) -> dict[str, str]:
    return {**os.environ, "ORDER_SERVICE_HOST": "127.0.0.1", "ORDER_SERVICE_PORT": str(port)}


def test_a_busy_port_is_one_clear_line_and_exit_1() -> None:
    with bind_socket("127.0.0.1", 0) as taken:
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "devtools.order_service"],
            cwd=REPOSITORY_ROOT,
            env=_env(port),
            capture_output=True,
            text=True,
            timeout=STARTUP_SECONDS,
        )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"port {port} on 127.0.0.1 is already in use (set ORDER_SERVICE_PORT)"
    ]


def test_it_serves_the_contract_on_the_configured_port(unused_port: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.order_service"],
        cwd=REPOSITORY_ROOT,
        env=_env(unused_port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{unused_port}", trust_env=False) as http:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                try:
                    http.get("/healthz").raise_for_status()
                    break
                except httpx.TransportError:
                    assert process.poll() is None, "the order service exited"
                    assert time.monotonic() < deadline, "the order service did not start"
                    time.sleep(0.1)
            created = http.post(
                "/orders", json={"user_id": "user-1", "amount": "5", "currency": "JPY"}
            ).json()
            fetched = http.get(f"/orders/{created['order_id']}").json()
        assert fetched == {
            "order_id": created["order_id"],
            "user_id": "user-1",
            "status": "awaiting_payment",
            "amount": "5",
            "currency": "JPY",
        }
    finally:
        process.terminate()
        process.wait(timeout=STARTUP_SECONDS)
