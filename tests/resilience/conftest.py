"""Attach the log tail of every running resilience stack to a failing test's report."""

from __future__ import annotations

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
        for stack in ACTIVE_STACKS:
            report.sections.append((f"stack log tail ({stack.log_path})", stack.log_tail()))
    return report
