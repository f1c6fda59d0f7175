"""``python -m devtools.devstack`` with the service's own processes replaced by stub_service.py.

Temporal and Tansu are real; used by test_devstack_main.py to exercise main()'s supervision.
"""

from __future__ import annotations

import sys
from pathlib import Path

from devtools import devstack, stack

STUB = str(Path(__file__).with_name("stub_service.py"))


def _stub_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, STUB, module, *args]


if __name__ == "__main__":
    stack.python_module_argv = _stub_argv
    sys.exit(devstack.main())
