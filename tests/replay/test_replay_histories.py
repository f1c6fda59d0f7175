"""Histories recorded by earlier versions replay on today's workflow code.

A payment may sleep for days (a bank transfer waiting to settle, a soft decline waiting to be
retried) while a new version is deployed: the new worker then replays its history, and any
change to the commands the workflow issues makes that payment fail with a non-determinism
error. Each folder under ``histories/`` holds the histories of one version, recorded on the
time-skipping server with real activities and a fake gateway, their payloads in plaintext
(see recorded.py); ``make record-histories`` records the current version's (record.py).

- ``before-merchants``: the version before API keys, merchants and the payload codec
  (62cd82d), recorded by that version's own workflow tests. Since then activity inputs
  gained fields (they are not part of determinism), the vault workflow records its own
  failure, and reconciliation purges expired idempotency keys behind ``workflow.patched``.
- ``200d42b``, recorded by ``make record-histories`` (workflows as of 1590400): every main
  path of every workflow type, one file each, named as in record.py's PATHS. Later folders
  are named for the commit they were recorded at, in the same way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.replay.recorded import DATA_CONVERTER, HISTORIES
from workers.payment_worker import WORKFLOW_RUNNER, WORKFLOWS

VERSIONS = sorted(path for path in HISTORIES.iterdir() if path.is_dir())
RECORDED = sorted(HISTORIES.rglob("*.json"))
# Read once, at collection: small files, and no file I/O inside the event loop.
HISTORIES_BY_PATH = {
    path: WorkflowHistory.from_json(str(path.relative_to(HISTORIES)), path.read_text())
    for path in RECORDED
}


def workflow_type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


def test_every_version_folder_holds_histories() -> None:
    # An empty folder (a recording that went wrong) would otherwise replay nothing, silently.
    assert VERSIONS, f"no recorded versions in {HISTORIES}"
    empty = [folder.name for folder in VERSIONS if not any(folder.rglob("*.json"))]
    assert not empty, f"version folders without histories: {empty}"


def test_every_workflow_type_has_recorded_histories() -> None:
    recorded = {workflow_type(history) for history in HISTORIES_BY_PATH.values()}
    # The workflows are defined without a name: the workflow type is the class name.
    missing = {workflow.__name__ for workflow in WORKFLOWS} - recorded
    assert not missing, f"record histories of {sorted(missing)}: make record-histories"


@pytest.mark.parametrize("path", RECORDED, ids=lambda path: str(path.relative_to(HISTORIES)))
async def test_recorded_history_replays(path: Path) -> None:
    # The worker's workflows, and the converter the histories were recorded with.
    replayer = Replayer(
        workflows=WORKFLOWS, workflow_runner=WORKFLOW_RUNNER, data_converter=DATA_CONVERTER
    )
    # Raises on non-determinism (a command that differs from what the history recorded).
    result = await replayer.replay_workflow(HISTORIES_BY_PATH[path])
    assert result.replay_failure is None
