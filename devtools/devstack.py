"""``make run`` (``python -m devtools.devstack``): the whole stack in the foreground.

A busy port is one line naming the setting that moves it, before anything starts. Then the
stack starts (:func:`devtools.stack.start_stack`), each process's output prefixed with its
name, and once everything is ready the addresses and the development API keys are printed.
Ctrl-C or SIGTERM stops everything (exit 0); a child that exits on its own stops the rest
(exit 1).
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

import structlog
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from devtools.processes import SUPERVISOR_NAME, ProcessGroup, StackError, describe_exit
from devtools.stack import (
    StackEndpoints,
    check_ports,
    find_tansu,
    find_temporal_cli,
    stack_ports,
    start_stack,
)
from payments.config import DATA_DIR, Settings


def _summary(settings: Settings, endpoints: StackEndpoints) -> list[str]:
    api, temporal = endpoints.api_url, settings.temporal
    try:
        database = make_url(settings.database.url).render_as_string(hide_password=True)
    except ArgumentError:
        database = "(unparsable DATABASE_URL)"  # never echo it: it may hold a password
    lines = [
        "all services are ready:",
        f"  API             {api}  (docs {api}/docs)",
        f"  Temporal UI     {endpoints.temporal_ui_url}",
        f"  Temporal        {endpoints.temporal_address}  namespace {temporal.namespace}, "
        f"task queue {temporal.task_queue}, state in {temporal.db_file}",
        f"  Kafka           {endpoints.kafka_bootstrap}",
    ]
    if endpoints.sandbox_url:
        lines.append(f"  Gateway sandbox {endpoints.sandbox_url}")
    lines.append(f"  Database        {database}")
    if endpoints.api_keys:
        # Development keys of a local stack (never a deployment's), printed so that the
        # README's curl examples can be pasted as they are.
        keys_file = settings.auth.dev_keys_file
        lines.append(f"  API keys        {keys_file} (merchant dev-merchant, development only)")
        lines += [f"    {role:<9} {endpoints.api_keys[role]}" for role in ("checkout", "admin")]
        session = "the UI decodes payloads with an admin session"
        lines.append(f"  Codec session   {api}/codec/login ({session})")
    return [*lines, "press Ctrl-C to stop everything"]


def _fail(message: str) -> int:
    print(f"{SUPERVISOR_NAME}: {message}", file=sys.stderr, flush=True)
    return 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    """Exit 0 on Ctrl-C/SIGTERM, 1 when something cannot start or a child exits on its own."""
    # The supervisor reports through its own prefixed lines; library chatter only when it matters.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        settings = Settings()
    except ValidationError as exc:  # messages only: the rejected input may be a secret
        problems = "; ".join(
            ".".join([exc.title, *map(str, error["loc"])]) + f": {error['msg']}"
            for error in exc.errors()
        )
        return _fail(f"invalid configuration: {problems}")
    try:
        check_ports(stack_ports(settings))
        find_temporal_cli()
        find_tansu()
    except StackError as exc:
        return _fail(str(exc))

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # SIGTERM stops the stack as Ctrl-C does; and Ctrl-C works even where SIGINT was ignored
    # when the supervisor started (a background job of a non-interactive shell).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    with ProcessGroup() as group:
        try:
            endpoints = start_stack(group, settings)
            if (crashed := group.crashed()) is None:
                for line in _summary(settings, endpoints):
                    group.say(line)
                crashed = group.wait_for_crash()
        except KeyboardInterrupt:
            group.say("stopping (signal received)")
            return 0
        except StackError as exc:
            group.say(f"error: {exc}; stopping")
            return 1
        finally:  # a second Ctrl-C must not cut the orderly stop of the children short
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        exit_ = describe_exit(crashed.returncode)
        group.say(f"{crashed.spec.name} exited unexpectedly ({exit_}); stopping the rest")
        return 1


if __name__ == "__main__":
    sys.exit(main())
