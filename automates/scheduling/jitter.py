"""Stable jitter: a deterministic offset per schedule, so automates declared for the same
minute do not all fire at :00:00.

The offset is drawn from a hash of the automate's name and the schedule's slug: the same on
every host and after every restart, and it changes only when the automate is renamed or the
schedule re-slugged. It is realised in the Prefect schedule itself (realise.py), so it is the
run's scheduled time, never a sleep inside the run.
"""

from __future__ import annotations

import hashlib

from croniter import croniter

from automates.scheduling.forms import Form, FormKind

MAX_JITTER_SECONDS = 86_400


def jitter_bound(form: Form, requested: int) -> int:
    """The largest offset this form can carry, at most `requested`.

    - `every`: less than one interval (a larger offset is the same schedule).
    - cron: the shifted minutes must stay inside their hour, so a shifted tick never crosses
      into another hour or day that the cron's other fields did not choose (Prefect's cron has
      no carry). `0 * * * *` takes up to 59 min 59 s; `*/15 * * * *` up to 14 min 59 s;
      `* * * * *` up to 59 s.
    - `at` (a one-off): none: the operator chose that exact moment.
    """
    if requested <= 0 or form.kind is FormKind.AT:
        return 0
    if form.kind is FormKind.EVERY:
        assert form.every_seconds is not None
        return min(requested, form.every_seconds - 1)
    return min(requested, 60 * (60 - max(cron_minutes(form))) - 1)


def stable_offset(automate: str, slug: str, bound: int) -> int:
    """An offset in [0, bound] seconds, a pure function of (automate, slug, bound)."""
    if bound <= 0:
        return 0
    digest = hashlib.sha256(f"{automate}/{slug}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (bound + 1)


def cron_minutes(form: Form) -> list[int]:
    assert form.cron is not None
    [minutes, *_], _ = croniter.expand(form.cron)
    return list(range(60)) if minutes == ["*"] else [int(m) for m in minutes]
