"""What only development runs: never in the wheel, never in the service's image.

- ``sandbox``: the Braintree-compatible gateway sandbox (``python -m devtools.sandbox``);
- ``order_service``: a local Order Service (``python -m devtools.order_service``);
- ``devstack``: ``make run``; ``processes``: its supervisor; ``stack``: what it starts, and the
  end-to-end tests and the benchmarks too;
- ``serving``: binding a port (a busy port is one clear line), serving an app on a thread;
- ``postgres``, ``events``: what the tests and the benchmarks share (throwaway PostgreSQL
  databases, a Kafka reader of the service's events).

Not installed: importable from the repository's root (pytest's ``pythonpath``, ``python -m``
from there, and ``PYTHONPATH`` for the processes the supervisor starts).
"""

from pathlib import Path

# The repository's root: what a child process needs on PYTHONPATH to import devtools.
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
