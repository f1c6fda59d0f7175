"""Histories recorded by earlier versions replay on today's workflow code.

A payment may sleep for days (a bank transfer waiting to settle, a soft decline waiting to be
retried) while a new version is deployed: the new worker then replays its history, and any
change to the commands the workflow issues makes that payment fail with a non-determinism
error. Each folder under ``histories/`` holds the histories of one version, recorded by that
version's own workflow tests (time-skipping server, real activities, fake gateway), their
payloads in plaintext as that version wrote them:

- ``before-merchants``: the version before API keys, merchants and the payload codec
  (62cd82d). Since then activity inputs gained fields (they are not part of determinism),
  the vault workflow records its own failure, and reconciliation purges expired idempotency
  keys behind ``workflow.patched``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workers.payment_worker import WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"
RECORDED = sorted(HISTORIES.glob("*/*.json"))
# Read once, at collection: small files, and no file I/O inside the event loop.
TEXTS = {path: path.read_text() for path in RECORDED}


def test_there_are_histories_to_replay() -> None:
    kinds = {path.stem.split("_")[0] for path in RECORDED}
    assert {"payment", "refund", "vault", "remove", "reconciliation"} <= kinds


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"{path.parent.name}-{path.stem}", TEXTS[path])
    # Raises on non-determinism (a command that differs from what the history recorded).
    result = await Replayer(workflows=WORKFLOWS).replay_workflow(history)
    assert result.replay_failure is None
