"""Workflow code imports the activity classes (to call their methods by reference) and runs
in Temporal's sandbox: neither may load the gateway SDK, the Kafka client or the database
toolkit. Those belong to the activities' dependencies, which only the worker builds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("braintree", "aiokafka", "sqlalchemy")

# Run in a fresh interpreter: this test process has long imported all three.
IMPORT_EVERY_WORKFLOW_MODULE = f"""
import importlib, json, pkgutil, sys
import workflows
imported = [
    importlib.import_module(module.name).__name__
    for module in pkgutil.iter_modules(workflows.__path__, "workflows.")
]
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set({FORBIDDEN!r}))
print(json.dumps({{"imported": imported, "loaded": loaded}}))
"""


def test_workflow_modules_load_no_gateway_kafka_or_database_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_WORKFLOW_MODULE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"workflows.payment", "workflows.refund", "workflows.reconciliation"} <= set(
        result["imported"]
    )
    assert result["loaded"] == []
