"""The bodies of the gate's job endpoints: what a residential worker may send, validated whole.

Every call names the worker's `host` (automates/browser/channel.py); `finish` adds the job's end.
Strict: a string is a string and a count an integer (not `true`, not "3"); a field the worker
never sends is refused, not ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

HOST_REQUIRED = "a job id and a JSON body with 'host' are required"
# A DNS name is at most 253 characters: any real host fits, and a claim is never cut (a cut
# host could not finish the job it claimed, which is matched by the whole name).
HOST_MAX_CHARS = 255
HOST_TOO_LONG = f"host: at most {HOST_MAX_CHARS} characters"
END_MALFORMED = "status, result, error or counters malformed"

# automates/store/browser_jobs.TERMINAL: the statuses a job ends in.
JobStatus = Literal["done", "failed"]


class JobCall(BaseModel):
    """The body of `claim` and `second-factor`."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    host: str = Field(max_length=HOST_MAX_CHARS)


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
    if any(p["loc"] == ("host",) and p["type"] == "string_too_long" for p in problems):
        return HOST_TOO_LONG
    # A body that is an object with a good host has only its end to blame.
    if all(p["loc"] and p["loc"][0] in END_FIELDS for p in problems):
        return END_MALFORMED
    return HOST_REQUIRED
