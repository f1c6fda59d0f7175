"""structlog configuration, applied once by each process's composition root.

Standard-library loggers (uvicorn, temporalio, aiokafka, alembic) go through the same
renderer. A redaction step drops values of keys that could carry secrets or payment data,
and masks anything that looks like a card number, wherever it appears.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from payments.config import LogSettings

SENSITIVE_KEYS = frozenset(
    {
        "payment_token",
        "payment_method_nonce",
        "nonce",
        "private_key",
        "password",
        "authorization",
        "card_number",
        "number",
        "cvv",
    }
)
# 13 to 19 digits, optionally separated by spaces or dashes: a primary account number.
_PAN = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")


def _mask(value: str) -> str:
    return _PAN.sub("[card-number-redacted]", value)


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in SENSITIVE_KEYS:
            event_dict[key] = "[redacted]"
        elif isinstance(event_dict[key], str):
            event_dict[key] = _mask(event_dict[key])
    return event_dict


def configure_logging(settings: LogSettings, *, process: str) -> None:
    level = logging.getLevelNamesMapping().get(settings.level.upper(), logging.INFO)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Chatty libraries: their INFO lines are connection noise.
    for name in ("aiokafka", "kafka", "httpx", "urllib3", "braintree"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    structlog.contextvars.bind_contextvars(process=process)
