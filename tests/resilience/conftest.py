"""Attach the log tail of every running resilience stack to a failing test's report."""

from __future__ import annotations

import re
from collections.abc import Generator

import pytest

from tests.resilience.support import ACTIVE_STACKS


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: breaks a real stack and waits for it to heal (tens of seconds)"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        # The ids a failure names (a payment that never ended...): what the processes said of
        # them, wherever in the log it is (the tail is mostly the test's own polling).
        named = set(_UUID.findall(report.longreprtext))
        for stack in ACTIVE_STACKS:
            report.sections.append((f"stack log tail ({stack.log_path})", stack.log_tail()))
            if named:
                lines = [
                    line
                    for line in stack.log_path.read_text(errors="replace").splitlines()
                    if any(i in line for i in named) and '"GET /' not in line
                ]
                report.sections.append(
                    (f"log lines naming {sorted(named)[:5]}", "\n".join(lines[-300:]))
                )
    return report


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
