"""The states and statuses the store keeps, one enumeration per column.

Each is stored as its lowercase value in a text column guarded by a CHECK constraint derived
from the enumeration itself (automates/store/schema.py), so the code and the database cannot
disagree about the values. Members are in the order of those CHECK lists: changing a value,
or the order, changes a constraint and needs a migration. Shared types: nothing of ours is
imported here.
"""

from __future__ import annotations

from enum import StrEnum


class RunOutcome(StrEnum):
    """How a guarded run ended, as the execution journal records it."""

    COMPLETED = "completed"
    """It did its work."""
    FINDINGS = "findings"
    """It did its work and found something to report (an audit's soft failure)."""
    SKIPPED = "skipped"
    """It did nothing on purpose: quiet hours, a misfire policy, a hold, a busy slot."""
    FAILED = "failed"
    """Every attempt failed."""
    TIMED_OUT = "timed_out"
    """Stopped at its timeout."""
    CRASHED = "crashed"
    """Its process died, or Prefect marked it Crashed."""
    CANCELLED = "cancelled"
    """Cancelled by an operator, or replaced by a newer run."""


# The outcomes that are a success, and those that are a failure, for the breaker and the
# journal audit alike; skipped and cancelled runs are neither.
SUCCESS = frozenset({RunOutcome.COMPLETED, RunOutcome.FINDINGS})
FAILURE = frozenset({RunOutcome.FAILED, RunOutcome.TIMED_OUT, RunOutcome.CRASHED})


class BreakerState(StrEnum):
    """Where an automate's circuit breaker stands."""

    CLOSED = "closed"
    """Runs as scheduled."""
    OPEN = "open"
    """Failed too often in a row: its schedules are paused until a probe after the cool-down."""
    HALF_OPEN = "half_open"
    """One probe run is under way; its outcome closes or re-opens the breaker."""


class RetryOutcome(StrEnum):
    """What became of the retry after a failed attempt (the crash journal)."""

    SUCCEEDED = "succeeded"
    """The next attempt succeeded."""
    FAILED = "failed"
    """The next attempt failed too, or the run ended without success."""
    NONE = "none"
    """No attempt came after this one."""


class TaskRunStatus(StrEnum):
    """Where an agent task run stands."""

    PENDING = "pending"
    """Requested; no dispatcher has started its CLI process yet."""
    RUNNING = "running"
    """Its CLI process runs."""
    COMPLETED = "completed"
    """The CLI ended with success."""
    FAILED = "failed"
    """The CLI failed, could not start, or the request could not be served."""
    TIMED_OUT = "timed_out"
    """Stopped at its timeout."""
    OVER_BUDGET = "over_budget"
    """Stopped at its budget, or refused because its agent's budget was spent."""
    CANCELLED = "cancelled"
    """Cancelled by an operator."""

    @property
    def ended(self) -> bool:
        """No CLI process runs or will run for it any more."""
        return self not in (TaskRunStatus.PENDING, TaskRunStatus.RUNNING)


class RunStatus(StrEnum):
    """Where a scoped run over a perimeter stands."""

    RUNNING = "running"
    """Under way."""
    COMPLETED = "completed"
    """Ended without a failure."""
    FAILED = "failed"
    """Ended with a failure."""


class BrowserJobStatus(StrEnum):
    """Where a browser job stands."""

    QUEUED = "queued"
    """Waiting for a residential worker."""
    RUNNING = "running"
    """Claimed by a worker."""
    DONE = "done"
    """Finished with a result."""
    FAILED = "failed"
    """Finished with an error, or failed before any worker claimed it."""
    LOST = "lost"
    """Claimed, then never reported: its worker died, so what the job did is unknown."""

    @property
    def ended(self) -> bool:
        """Nothing will happen to the job any more."""
        return self not in (BrowserJobStatus.QUEUED, BrowserJobStatus.RUNNING)


class AlertDeliveryStatus(StrEnum):
    """What became of one alert on one route."""

    PENDING = "pending"
    """To be sent (again, after a failed attempt)."""
    SENDING = "sending"
    """Claimed by a deliverer, being sent."""
    SENT = "sent"
    """Delivered."""
    SUPPRESSED = "suppressed"
    """Not sent, on purpose (the reason says why: a duplicate, a route that does not take it)."""
    FOLDED = "folded"
    """Held back by the route's rate limit, to go out in the next digest."""
    DIGESTED = "digested"
    """Sent inside a digest alert."""
    DEAD = "dead"
    """Given up after its retries (a dead letter)."""


class PerimeterKind(StrEnum):
    """What a perimeter scopes."""

    PLATFORM = "platform"
    """The platform itself (the one perimeter with the id `platform`)."""
    TENANT = "tenant"
    """One tenant."""


class RunTrigger(StrEnum):
    """What started a scoped run."""

    EMAIL = "email"
    """An e-mail."""
    CHAT = "chat"
    """A chat message."""
    CRON = "cron"
    """A schedule."""
    MANUAL = "manual"
    """An operator."""


class HoldReason(StrEnum):
    """Why an automate is held for operator review."""

    MISFIRE = "misfire"
    """Its misfire policy met an outage too old to catch up on its own."""
    PAUSED = "paused"
    """An operator paused it (`automates pause NAME`), until `automates resume NAME`."""


class ToolCallOutcome(StrEnum):
    """What became of one call of the layer's MCP tools by an agent (the tool-call journal)."""

    OK = "ok"
    """Answered, or the change was made."""
    REFUSED = "refused"
    """Refused before anything changed: out of the agent's scope, malformed or over a limit."""
    FAILED = "failed"
    """Allowed, but the layer could not do it (the store or the server failed)."""


class LlmCallStatus(StrEnum):
    """Where a call of the LLM facade stands in its agent's budget."""

    RESERVED = "reserved"
    """Under way: its worst-case cost is held in the budget (and stays held, within the
    rolling window, if its process died before it was settled)."""
    SPENT = "spent"
    """Answered: its real cost counts."""
    FAILED = "failed"
    """The Messages API refused or could not be reached: nothing was spent."""
