"""The durable wait for the gateway to settle a sale, shared by payments and refunds.

A bank transfer settles in days, a card sale in the gateway's nightly batch; a payment or a
partial refund waits for it. The wait follows a backoff schedule (minutes, then hours; the
last step repeats), is woken early by a signal (a webhook, an event, POST /verify-payment),
and ends at an absolute deadline that travels with it. Every check adds about a dozen events
to the run's history, so after ``CHECKS_PER_RUN`` checks, or when Temporal suggests it, the
workflow continues as new with ``state()``: each run's history stays around a thousand
events however long the wait (Temporal warns at 10,240 and terminates at 51,200).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from payments.contracts import SettlementWaitState

# About 11 history events per check: ~1,100 events per run.
CHECKS_PER_RUN = 100
# Asked only where a run would continue as new; runs that never reach that point (every
# history recorded before the change) replay unchanged. See README, "Changing workflow code".
CONTINUE_AS_NEW_PATCH = "settlement-wait-continues-as-new"


def parse_instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class SettlementWait:
    def __init__(self, schedule: Sequence[float], state: SettlementWaitState) -> None:
        self._schedule = list(schedule) or [3600.0]
        self.deadline = parse_instant(state.deadline_at)
        self.checks = state.checks
        self.check_requested = state.check_requested
        self._checks_this_run = 0
        # When the next scheduled check is due (ISO 8601), "" while not waiting: the
        # workflows' progress query shows it, and reconciliation leaves the run alone until.
        self.next_check_at = ""

    @classmethod
    def starting_now(
        cls, schedule: Sequence[float], deadline_seconds: float, *, check_requested: bool = False
    ) -> SettlementWait:
        deadline = workflow.now() + timedelta(seconds=deadline_seconds)
        return cls(schedule, SettlementWaitState(deadline.isoformat(), 0, check_requested))

    def request_check(self) -> None:
        """A signal: check before the next timer. Not lost if it comes before the wait."""
        self.check_requested = True

    async def until_next_check(self) -> bool:
        """Sleep until the schedule's next check or a signal, whichever comes first. False
        (at once) when the deadline has passed: no check is due, the wait has failed."""
        remaining = (self.deadline - workflow.now()).total_seconds()
        if remaining <= 0:
            return False
        delay = self._schedule[min(self.checks, len(self._schedule) - 1)]
        wait = timedelta(seconds=min(delay, remaining))
        self.next_check_at = (workflow.now() + wait).isoformat()
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self.check_requested, timeout=wait)
        self.next_check_at = ""
        self.check_requested = False
        self.checks += 1
        self._checks_this_run += 1
        return True

    def should_continue_as_new(self) -> bool:
        """Time to hand the wait to a new run (between checks, nothing in flight)."""
        long = (
            self._checks_this_run >= CHECKS_PER_RUN
            or workflow.info().is_continue_as_new_suggested()
        )
        return long and workflow.patched(CONTINUE_AS_NEW_PATCH)

    def state(self) -> SettlementWaitState:
        return SettlementWaitState(
            deadline_at=self.deadline.isoformat(),
            checks=self.checks,
            check_requested=self.check_requested,
        )
