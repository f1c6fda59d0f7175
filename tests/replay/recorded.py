"""Where recorded histories live and how their payloads are encoded: shared by the recorder
(``python -m tests.replay.record``) and the replay test, so that a history is replayed with the
converter it was recorded with."""

from __future__ import annotations

from pathlib import Path

from temporalio.converter import DataConverter

# One folder per recorded version: histories/<version>/<path>.json.
HISTORIES = Path(__file__).parent / "histories"

# Plaintext: the SDK's default converter, without the encrypting codec the service runs with
# (workflows/codec.py). A reviewer reads a recorded history without any key (each payload's
# "data" is the base64 of its JSON, as Temporal's CLI and UI export it), and a replay
# needs none; nothing is lost, since the codec only transforms payload bytes on the wire,
# while replay compares the commands the workflow code issues (activities, timers, patches)
# and decodes the payloads with the same types either way.
DATA_CONVERTER = DataConverter.default
