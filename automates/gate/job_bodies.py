"""The bodies of the gate's job endpoints: what a residential worker may send, validated whole.

Every call names the worker's `host` (automates/browser/channel.py); `finish` adds the job's end.
Strict: a string is a string and a count an integer (not `true`, not "3"); a field the worker
never sends is refused, not ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

HOST_REQUIRED = "a job id and a JSON body with 'host' are required"
END_MALFORMED = "status, result, error or counters malformed"

# automates/browser/jobs.TERMINAL: the statuses a job ends in.
JobStatus = Literal["done", "failed"]


class JobCall(BaseModel):
    """The body of `claim` and `second-factor`."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    host: str


class JobEnd(JobCall):
    """The body of `finish`."""

    status: JobStatus
    result: dict[str, Any] | None = None
    error: str | None = None
    counters: dict[str, int]


END_FIELDS = frozenset(JobEnd.model_fields) - frozenset(JobCall.model_fields)


def why_refused(error: ValidationError) -> str:
    """The 422's detail for a body that does not validate."""
    problems = error.errors()
    unknown = sorted(str(p["loc"][0]) for p in problems if p["type"] == "extra_forbidden")
    if unknown:
        return f"fields no worker sends: {', '.join(unknown)}"
    # A body that is an object with a good host has only its end to blame.
    if all(p["loc"] and p["loc"][0] in END_FIELDS for p in problems):
        return END_MALFORMED
    return HOST_REQUIRED
