"""Hostile input, schema-driven: schemathesis against the running API's own OpenAPI schema,
every operation, with the admin key (and once more with a checkout key), positive and
negative data. Two properties must hold for every generated request: never a 5xx
(``not_a_server_error``), and every answer matches the schema documented for its status
(``response_schema_conformance``). On the real stack, SQLite and PostgreSQL (PostgreSQL
refuses some strings SQLite stores, e.g. NUL characters)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

# Enough to reach every branch the schema describes (the coverage phase adds boundary values
# of every parameter); deterministic, so a failure reproduces.
MAX_EXAMPLES = 25
SEED = 20261202


@pytest.mark.parametrize("role", ["admin", "checkout"])
def test_no_server_error_and_every_answer_as_documented(
    stack: Stack, role: str, tmp_path: Path
) -> None:
    report = tmp_path / "schemathesis.junit.xml"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{stack.endpoints.api_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {stack.keys[role]}",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-deterministic",
        # One worker: with two threads, hypothesis' ast.parse of its filters' lambdas runs
        # concurrently and CPython 3.11 raises "AST constructor recursion depth mismatch"
        # (fixed in later CPythons), which ends the run as an error of its own (seen in CI).
        "--workers",
        "1",
        "--request-timeout",
        "20",
        # Its stateful phase lists the keys and would revoke them all, ours included: a real
        # power of an admin key, and not what this run is about (tests/api covers it).
        "--exclude-path",
        "/admin/api-keys/{key_id}",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        "--no-color",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    output = result.stdout + result.stderr
    # Never print the key: the header is in the command, not in schemathesis' report.
    assert result.returncode == 0, output[-8000:]
    assert "No issues found" in output or " passed" in output, output[-3000:]
