"""What every log line of an activity says about where it runs: the workflow id and run id,
the activity and its attempt, and the payment or refund the workflow is about.

A Temporal worker interceptor binds them (structlog contextvars) around each activity,
regular or local; the SDK copies the context into the executor thread of a synchronous
activity, so the activity's own lines and those of the libraries it calls carry them.
"""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

# Workflow ids are business keys (workflows/client.py): what the run is about.
_SUBJECTS = {"payment-": "payment_id", "refund-": "refund_id"}


def activity_log_fields(info: activity.Info) -> dict[str, object]:
    fields: dict[str, object] = {
        "workflow_id": info.workflow_id,
        "run_id": info.workflow_run_id,
        "activity": info.activity_type,
        "attempt": info.attempt,
    }
    for prefix, field in _SUBJECTS.items():
        if info.workflow_id and info.workflow_id.startswith(prefix):
            fields[field] = info.workflow_id.removeprefix(prefix)
    return fields


class ActivityLogContext(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindsActivityFields(next)


class _BindsActivityFields(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        with structlog.contextvars.bound_contextvars(**activity_log_fields(activity.info())):
            return await self.next.execute_activity(input)
