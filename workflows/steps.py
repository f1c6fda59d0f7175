"""Short steps run as local activities.

A regular activity costs the Temporal server a task to schedule, dispatch and complete, and
the workflow a round trip through the server for each (about 11 ms of the dev server's CPU); a
local activity runs on the worker that runs the workflow, inside its workflow task, and is
recorded as one marker event when the task completes (about 1 ms). A payment's database writes,
its fraud rules and its event announcements take milliseconds and are idempotent, so they run
locally; the gateway calls stay regular activities (long retries within a bound, another worker
taking over an attempt, every attempt visible in the Temporal UI).

Same semantics for the workflow either way: at-least-once, retried by the same policy (a retry
that would wait longer than ``LOCAL_RETRY_THRESHOLD`` waits on a durable timer instead of in
the worker's memory), the result recorded in the history so a replay does not run it again.

Runs started before this version replay their regular activities: the workflows ask
``workflow.patched(SHORT_STEPS_RUN_LOCALLY)`` once, at the start of each run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar, overload

from temporalio import workflow

from workflows.options import ActivityOptions

SHORT_STEPS_RUN_LOCALLY = "short-steps-run-locally"

# Retries after a wait longer than this go through a durable timer (a new workflow task), so
# that a long outage (database, broker) does not hold the workflow task open.
LOCAL_RETRY_THRESHOLD = timedelta(seconds=10)

ArgT = TypeVar("ArgT")
ReturnT = TypeVar("ReturnT")


@overload
async def short_step(
    method: Callable[[Any, ArgT], Awaitable[ReturnT]],
    arg: ArgT,
    *,
    local: bool,
    options: ActivityOptions,
) -> ReturnT: ...


@overload
async def short_step(
    method: Callable[[Any, ArgT], ReturnT],
    arg: ArgT,
    *,
    local: bool,
    options: ActivityOptions,
) -> ReturnT: ...


async def short_step(
    method: Callable[[Any, Any], Any], arg: Any, *, local: bool, options: ActivityOptions
) -> Any:
    """Run ``method`` (an activity method) with ``options``: as a local activity when
    ``local`` (this run is of the version that runs short steps locally), else as a regular
    activity, as the run's history says it did."""
    if local:
        return await workflow.execute_local_activity_method(
            method, arg, local_retry_threshold=LOCAL_RETRY_THRESHOLD, **options
        )
    return await workflow.execute_activity_method(method, arg, **options)
