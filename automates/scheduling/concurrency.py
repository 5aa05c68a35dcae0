"""Concurrency policies: what a new run does while another run of the same automate is active.

- `forbid` (default): the new run is skipped, and recorded as skipped.
- `queue_one`: at most one run waits for the active one; further ones are skipped.
- `replace`: the active run is cancelled and the new one starts.
- `allow`: runs overlap, up to the declared `concurrency_limit` (null: unlimited).
"""

from __future__ import annotations

from enum import StrEnum


class Concurrency(StrEnum):
    FORBID = "forbid"
    QUEUE_ONE = "queue_one"
    REPLACE = "replace"
    ALLOW = "allow"


def wait_budget(timeout_seconds: float, elapsed: float) -> float:
    """Seconds a run may still wait (for its slot, for older catch-up runs): what is left of
    its timeout, less a margin (a tenth of it, 5 s at most), so that the guard's own verdict
    ends the run before Prefect's timeout does."""
    margin = min(5.0, timeout_seconds / 10)
    return max(0.0, timeout_seconds - margin - elapsed)
