"""The heap a long-running process starts with, kept out of the garbage collector's way.

CPython's full (generation 2) collection walks every tracked object, and most of a service
process's objects are made at startup and live as long as it does: modules (temporalio,
SQLAlchemy, braintree, FastAPI), the app, the engine. In the API such a collection stopped the
event loop for 133 ms under a light open loop, the slowest POST of the run. Frozen objects
(gc.freeze) are never walked, so the collections that remain look only at what requests and
workflow tasks allocate.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect what startup left behind, then freeze what survives. Called once by a
    process's composition root, after it has built what lives until the process ends."""
    gc.collect()
    gc.freeze()
