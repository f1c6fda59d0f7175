"""``payments``: the service's one console command (Typer).

The processes: ``dev`` (the whole local stack, what ``make run`` starts), ``api``, ``worker``,
``consumer``, ``sandbox``. The operator's tasks: ``db upgrade``, ``keys``,
``search-attributes``, ``reconcile``, ``replay``. Each process keeps its own composition root
(its module's ``main``); this module only chooses one, so ``python -m api`` and ``payments
api`` are the same process. Settings come from the environment, as for every process.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec

import typer

from cli.fraud import fraud
from payments.config import get_settings

app = typer.Typer(
    name="payments",
    help="The payment service: its processes and its operators' tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # a traceback could print settings: the plain one
)
db = typer.Typer(help="The database.", no_args_is_help=True)
keys = typer.Typer(
    help="API keys (their secrets are shown once, at creation).", no_args_is_help=True
)
app.add_typer(db, name="db")
app.add_typer(keys, name="keys")
app.add_typer(fraud, name="fraud")


P = ParamSpec("P")


def _exit(code: int | None) -> None:
    if code:
        raise typer.Exit(code)


def _skips_teardown(command: Callable[P, None]) -> Callable[P, None]:
    """For a short command that used a Temporal client: once it has answered, leave without
    the interpreter's teardown. The client's Rust runtime keeps threads that may still take
    the GIL while the interpreter finalizes, which aborts the process (SIGABRT, "PyGILState_
    Release: thread state ... must be current") after its work is done and printed
    (temporalio/sdk-python#300); a script would read that as a failure."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
            code = 0
        except typer.Exit as exit_:
            code = exit_.exit_code
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    return run


def _from_checkout(command: str) -> None:
    """devtools (the local stack, the gateway sandbox) is not part of the installed service:
    it runs from a checkout, whose folder holds this package too (``make install`` installs
    the project in place)."""
    checkout = Path(__file__).resolve().parents[1]
    if not (checkout / "devtools" / "__init__.py").is_file():
        typer.echo(f"payments {command} runs from a checkout of the project (make run)", err=True)
        raise typer.Exit(2)
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))


# --- processes ----------------------------------------------------------------------------
@app.command()
def dev() -> None:
    """The whole stack on this machine (Temporal and its UI, Kafka, sandbox, API, worker,
    consumer), as `make run` starts it; Ctrl-C stops it."""
    _from_checkout("dev")
    from devtools.devstack import main

    _exit(main())


@app.command()
def api() -> None:
    """The HTTP API (uvicorn on API_HOST:API_PORT)."""
    from api.__main__ import main

    _exit(main())


@app.command()
def worker() -> None:
    """The Temporal worker: payment, refund and reconciliation workflows and their activities."""
    from workers.payment_worker import main

    main()


@app.command()
def consumer() -> None:
    """The Kafka consumer: payment requests and status updates from other services."""
    from workers.consumer import main

    main()


@app.command()
def sandbox() -> None:
    """The Braintree-compatible gateway sandbox (development and tests only)."""
    _from_checkout("sandbox")
    from devtools.sandbox.__main__ import main

    _exit(main())


# --- operators' tasks ---------------------------------------------------------------------
@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every database migration not applied yet (idempotent)."""
    from payments.db.migrate import main

    _exit(main())


@keys.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin or checkout")],
    merchant_id: Annotated[str | None, typer.Option(help="a checkout key's merchant")] = None,
) -> None:
    """Create a key; its secret is printed once, on standard output."""
    from api.keys import main

    _exit(
        main(["create", "--role", role, *(["--merchant-id", merchant_id] if merchant_id else [])])
    )


@keys.command("list")
def keys_list() -> None:
    """Every key, never a secret."""
    from api.keys import main

    _exit(main(["list"]))


@keys.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key at once."""
    from api.keys import main

    _exit(main(["revoke", key_id]))


@app.command("search-attributes")
@_skips_teardown
def search_attributes() -> None:
    """Register the search attributes runs are found by in the Temporal UI, in
    TEMPORAL_NAMESPACE (self-hosted Temporal; on Temporal Cloud use tcld). Run it before the
    first deploy of a version that sets new ones; running it again changes nothing."""
    from cli.temporal_tasks import search_attributes as register

    settings = get_settings()
    added = asyncio.run(register(settings))
    namespace = settings.temporal.namespace
    if added:
        typer.echo(f"registered in {namespace}: {', '.join(added)}")
    else:
        typer.echo(f"every search attribute is registered in {namespace}")


@app.command()
@_skips_teardown
def reconcile() -> None:
    """Start a reconciliation pass now; its report: GET /reconciliation/latest."""
    from cli.temporal_tasks import reconcile as start

    asyncio.run(start(get_settings()))
    typer.echo("reconciliation started")


@app.command()
@_skips_teardown
def replay(
    workflow_id: Annotated[
        str | None, typer.Argument(help="a run to fetch from Temporal (its latest run)")
    ] = None,
    file: Annotated[
        Path | None, typer.Option(help="a history exported as JSON, instead of fetching one")
    ] = None,
    run_id: Annotated[str | None, typer.Option(help="that run rather than the latest")] = None,
) -> None:
    """Replay a run's history on this code's workflows: exit 1 on non-determinism, which a
    deploy of this code would turn into a stuck run."""
    from cli.temporal_tasks import fetch_history, read_history
    from cli.temporal_tasks import replay as replay_history

    if (workflow_id is None) == (file is None):
        raise typer.BadParameter("give a WORKFLOW_ID or --file, not both")
    settings = get_settings()
    if file is not None:
        if not file.is_file():
            raise typer.BadParameter(f"{file} is not a file", param_hint="--file")
        history = read_history(file)
    else:
        assert workflow_id is not None
        history = asyncio.run(fetch_history(settings, workflow_id, run_id))
    result = asyncio.run(replay_history(settings, history))
    events = len(history.events)
    if result.replay_failure is not None:
        typer.echo(f"{history.workflow_id}: does NOT replay ({events} events)", err=True)
        typer.echo(f"  {type(result.replay_failure).__name__}: {result.replay_failure}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{history.workflow_id}: replays ({events} events)")


def main() -> None:
    app(prog_name="payments")


if __name__ == "__main__":
    main()
