"""structlog configuration, applied once by each process's composition root.

Standard-library loggers (uvicorn, temporalio, aiokafka, alembic) go through the same
processors and renderer. Exceptions are rendered into the event first, then `redact` walks the
whole event (nested dicts, lists, tuples and sets included): values of keys that could carry
secrets or payment data are dropped, and card numbers (`payments.card_data`) and the secret
part of this service's API keys are masked in every string, keys included. What leaves the
renderer has been through redaction, tracebacks and uvicorn's access lines too.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import unquote_plus

import structlog
from structlog.tracebacks import ExceptionDictTransformer

from payments.card_data import first_card_number_path, mask_card_numbers
from payments.config import LogSettings

# Compared case-insensitively, "-" and "_" alike ("Set-Cookie" is "set_cookie").
SENSITIVE_KEYS = frozenset(
    {
        # Payment data.
        "payment_token",
        "payment_method_token",
        "payment_method_nonce",
        "nonce",
        "token_ciphertext",
        "card_number",
        "number",
        "pan",
        "cvv",
        "cvc",
        "security_code",
        # Credentials and key material.
        "secret",
        "api_key",
        "apikey",
        "token",
        "authorization",
        "cookie",
        "set-cookie",
        "private_key",
        "password",
        "encryption_key",
        "payload_keys",
        "token_keys",
    }
)
# A key ending in one of these is sensitive too: access_token, client_secret, x-api-key,
# sasl_password, proxy-authorization, token_encryption_key.
SENSITIVE_KEY_SUFFIXES = (
    "_token",
    "_secret",
    "_api_key",
    "_password",
    "_private_key",
    "_encryption_key",
    "_authorization",
    "_cookie",
)

REDACTED = "[redacted]"
CARD_NUMBER_REDACTED = "[card-number-redacted]"
# Placeholders for what redaction did not walk: too deep, past the per-event budget, or a
# value whose repr() (or anything else) raised.
TOO_DEEP = "[too-deep]"
TRUNCATED = "[truncated]"
UNLOGGABLE = "[unloggable]"

# Walk limits per event: nesting depth, and values visited. A cyclic value ends at the depth
# limit; a huge one at the budget, instead of stalling the process that logs it.
MAX_DEPTH = 24
MAX_VALUES = 10_000

# This service's API keys: psk_<12 hex key id>_<43 base64url secret>. The key id names the key
# and is kept; everything after it is masked, whatever its length (a truncated secret is still
# a secret).
_API_KEY = re.compile(r"(psk_[0-9A-Fa-f]{12}_)[A-Za-z0-9_-]+")
_API_KEY_REDACTED = r"\1" + REDACTED

_NORMALISED_SENSITIVE_KEYS = frozenset(key.replace("-", "_") for key in SENSITIVE_KEYS)
# Added by ProcessorFormatter for the records of stdlib loggers; later processors need them.
_PROCESSOR_META_KEYS = frozenset({"_record", "_from_structlog"})


def is_sensitive_key(key: str) -> bool:
    """Whether values under ``key`` are dropped from logs (see SENSITIVE_KEYS)."""
    normalised = key.lower().replace("-", "_")
    return normalised in _NORMALISED_SENSITIVE_KEYS or normalised.endswith(SENSITIVE_KEY_SUFFIXES)


def _mask_once(text: str) -> str:
    return mask_card_numbers(_API_KEY.sub(_API_KEY_REDACTED, text), CARD_NUMBER_REDACTED)


def mask_text(text: str) -> str:
    """``text`` with card numbers and API key secrets masked; other text untouched.

    A URL or form body can carry a card number percent- or plus-encoded
    ("4111%201111%201111%201111", uvicorn quotes paths): when the decoded text holds something
    to mask, the decoded text, masked, is returned instead.
    """
    masked = _mask_once(text)
    if "%" in masked or "+" in masked:
        decoded = unquote_plus(masked)
        if decoded != masked:
            decoded_masked = _mask_once(decoded)
            if decoded_masked != decoded:
                return decoded_masked
    return masked


def _is_card_number(value: int | float) -> bool:
    return first_card_number_path(value) is not None


class _Redactor:
    """One event's walk; never raises, never mutates what it is given."""

    def __init__(self) -> None:
        self.remaining = MAX_VALUES

    def key(self, key: object) -> object:
        if isinstance(key, str):
            return mask_text(key)
        if key is None or isinstance(key, bool):
            return key
        if isinstance(key, int | float):
            return CARD_NUMBER_REDACTED if _is_card_number(key) else key
        # JSON allows only str, number, bool and null keys.
        return mask_text(repr(key))

    def value(self, value: object, depth: int = 0) -> object:
        self.remaining -= 1
        if self.remaining < 0:
            return TRUNCATED
        try:
            return self._value(value, depth)
        except Exception:
            return UNLOGGABLE

    def _value(self, value: object, depth: int) -> object:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return mask_text(value)
        if isinstance(value, int | float):
            # A card number stored as a number is still a card number.
            return CARD_NUMBER_REDACTED if _is_card_number(value) else value
        if isinstance(value, Mapping | list | tuple | set | frozenset):
            if depth >= MAX_DEPTH:
                return TOO_DEEP
            if isinstance(value, Mapping):
                return {
                    self.key(key): REDACTED
                    if isinstance(key, str) and is_sensitive_key(key)
                    else self.value(item, depth + 1)
                    for key, item in value.items()
                }
            items = [self.value(item, depth + 1) for item in value]
            # Sets become lists: JSON has no sets, and masked members may now be equal.
            return tuple(items) if isinstance(value, tuple) else items
        # Anything else is shown the way the renderers would show it (both fall back to
        # __structlog__() or repr()), masked.
        custom = getattr(value, "__structlog__", None)
        shown = custom() if callable(custom) else repr(value)
        if isinstance(shown, str):
            return mask_text(shown)
        return self.value(shown, depth + 1) if depth < MAX_DEPTH else TOO_DEEP


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Drop sensitive values and mask card numbers and API keys throughout ``event_dict``.

    Runs after the exception renderer (so tracebacks are masked) and before the renderer.
    Values of sensitive keys become "[redacted]" at any depth; card numbers in strings (and
    ints or whole floats that are card numbers) become "[card-number-redacted]"; API keys keep
    their key id only. Containers are copied, never modified; values nested deeper than
    MAX_DEPTH, or past MAX_VALUES per event, become placeholders. Never raises: a value that
    cannot be processed becomes "[unloggable]".
    """
    redactor = _Redactor()
    try:
        for key in list(event_dict):
            if key in _PROCESSOR_META_KEYS:
                continue
            value = event_dict.pop(key)
            try:
                sensitive = is_sensitive_key(key)
                clean_key = mask_text(key)
            except Exception:  # not a str after all
                sensitive, clean_key = True, UNLOGGABLE
            event_dict[clean_key] = REDACTED if sensitive else redactor.value(value)
    except Exception:
        # Whatever happened, nothing unredacted may reach the renderer.
        meta = {key: event_dict[key] for key in _PROCESSOR_META_KEYS if key in event_dict}
        event_dict.clear()
        event_dict.update(meta, event=UNLOGGABLE)
    return event_dict


def configure_logging(settings: LogSettings, *, process: str) -> None:
    level = logging.getLevelNamesMapping().get(settings.level.upper(), logging.INFO)
    renderer: structlog.typing.Processor
    render_exception: structlog.typing.Processor
    if settings.json_output:
        renderer = structlog.processors.JSONRenderer()
        # Structured tracebacks; no locals: they could hold anything, under any name.
        render_exception = structlog.processors.ExceptionRenderer(
            ExceptionDictTransformer(show_locals=False)
        )
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        # A plain-text traceback that `redact` can mask; the console renderer's own pretty
        # traceback would be drawn after redaction, from the live exception.
        render_exception = structlog.processors.format_exc_info
    # Exceptions become text before `redact`, which comes last: nothing is added after it.
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        render_exception,
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
            # Records of stdlib loggers (uvicorn's access log: the path is in a %s argument)
            # arrive with the message already formatted as "event", exc_info attached.
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own logging configuration (when something ran it with one) gives its loggers
    # handlers of their own that bypass redaction: every line goes through the root's.
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.disabled = False
    # Chatty libraries: their INFO lines are connection noise.
    for name in ("aiokafka", "kafka", "httpx", "urllib3", "braintree"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    structlog.contextvars.bind_contextvars(process=process)
