"""A process's startup heap is frozen: full collections no longer walk it."""

from __future__ import annotations

import gc

from payments.heap import freeze_startup_heap


def test_the_startup_heap_is_frozen() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # this test process keeps collecting as before
