"""How `automates show` reads in a terminal: a page of sections in plain words, its schedules
with their next fire time computed by `automates preview`'s code
(automates/scheduling/preview.py). The `--json` output is not made here.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from automates.cli.output import TIME
from automates.overview import AutomateStatus
from automates.registry.model import Automate, Kind
from automates.registry.schedule import Schedule
from automates.registry.targets import automate_schedules
from automates.scheduling.approval import Approval
from automates.scheduling.concurrency import Concurrency
from automates.scheduling.forms import FormKind
from automates.scheduling.misfire import CATCH_UP_LIMIT, Misfire
from automates.scheduling.preview import PreviewSchedule, TickStatus, preview
from automates.scheduling.quiet_hours import QuietAction, QuietHours

# How many ticks in a row `show` looks through for one that quiet hours do not skip.
QUIET_LOOKAHEAD = 50


@dataclass(frozen=True)
class NextFire:
    """When one schedule next starts a run, after jitter and quiet hours."""

    at: datetime | None  # None: it never fires again (a one-off in the past, always quiet)
    note: str = ""


async def next_fires(automate: Automate, now: datetime) -> dict[str, NextFire]:
    """Each schedule's next run start, by slug, as `automates preview` computes it."""
    quiet = automate.quiet_hours
    return {s.slug: await _next_fire(s, quiet, now) for s in automate_schedules(automate)}


async def _next_fire(
    schedule: PreviewSchedule, quiet: QuietHours | None, now: datetime
) -> NextFire:
    start = now
    for _ in range(QUIET_LOOKAHEAD):  # a skipped tick: look again after its quiet window
        ticks = await preview([schedule], start=start, count=1, quiet=quiet)
        if not ticks:
            return NextFire(None, "no fire time ahead")
        tick = ticks[0]
        if tick.status is TickStatus.FIRE:
            return NextFire(tick.at)
        if tick.status is TickStatus.DEFER:
            return NextFire(tick.runs_at, "deferred to the end of the quiet hours")
        end = quiet.window_end(tick.at) if quiet else None
        if end is None:
            return NextFire(None, "always inside the quiet hours: never")
        start = end
    return NextFire(None, f"its next {QUIET_LOOKAHEAD} ticks all fall in the quiet hours: skipped")


def show_page(
    status: AutomateStatus,
    *,
    fires: dict[str, NextFire],
    default_pool: str,
    project_root: Path,
    now: datetime,
) -> RenderableType:
    """`automates show NAME` for a person: what it is, when it fires, how it is guarded, its
    runbook and what the server says of its runs."""
    a = status.automate
    state = "" if a.enabled else " (disabled)"
    parts: list[RenderableType] = [
        Text.assemble((a.name, "bold"), f"  {a.kind.value} · {a.caste} / {a.family}{state}"),
        Text(a.description),
        "",
        _section("What it is", _what(a, default_pool)),
    ]
    if a.kind.deployable:  # a lib is never run: no schedule, no guard
        parts += ["", _section("Schedules", _schedule_rows(a, status, fires, now))]
        parts += ["", _section("Guard", _guard(a))]
    parts += ["", _section("Runbook", [("", _runbook(a, project_root))])]
    parts += ["", _section("Runs (from the Prefect server)", _runs(status, now))]
    return Group(*parts)


Row = tuple[str, str | Text]


def _section(title: str, rows: list[Row]) -> RenderableType:
    keyed = any(key for key, _ in rows)
    grid = Table.grid(padding=(0, 2))
    if keyed:
        grid.add_column(no_wrap=True, style="dim")
    grid.add_column(overflow="fold")
    for key, value in rows:
        # Text, never markup: a description or a parameter may hold square brackets.
        shown = Text(value) if isinstance(value, str) else value
        grid.add_row(*((Text(key), shown) if keyed else (shown,)))
    padded = Table.grid()
    padded.add_column(width=2)
    padded.add_column()
    padded.add_row("", grid)
    return Group(Text(title, style="bold"), padded)


def _what(a: Automate, default_pool: str) -> list[Row]:
    if a.command is not None:
        runs: Row = ("command", f"{shlex.join(a.command)} (as a subprocess, under the guard)")
    elif a.kind is Kind.LIB:
        runs = ("module", a.flow_entrypoint)
    else:
        runs = ("flow", a.flow_entrypoint)
    rows: list[Row] = [runs]
    if a.kind is not Kind.LIB:
        rows.append(("pool", a.work_pool or f"{default_pool} (the default pool)"))
    rows.append(("agents", ", ".join(a.agents) or "none"))
    rows.append(("tags", ", ".join(a.tags)))
    if a.parameters:
        rows.append(("parameters", _pairs(a.parameters)))
    if a.environments:
        rows.append(
            ("environments", f"runs only where AUTOMATES_ENVIRONMENT is {_or(a.environments)}")
        )
    if a.triggers:
        rows.append(("triggers", f"{len(a.triggers)} event trigger(s) besides the schedules"))
    if a.webhook:
        rows.append(("webhook", "the webhook may start it"))
    return rows


def _schedule_rows(
    a: Automate, status: AutomateStatus, fires: dict[str, NextFire], now: datetime
) -> list[Row]:
    if not a.schedules:
        if a.kind is Kind.SERVICE:
            return [("", "none: a service runs continuously, restarted when it exits")]
        return [("", f"none: it runs when asked (`automates trigger {a.name}`)")]
    rows: list[Row] = []
    for schedule in a.schedules:
        line = _form(schedule)
        if schedule.form.kind is not FormKind.AT:  # a one-off is shown in its timezone
            line += f" in {schedule.timezone}"
        offset = a.jitter_offset(schedule)
        if offset:
            line += f", +{_duration(offset)} jitter"
        fire = fires.get(schedule.slug)
        if fire is not None:
            when = _moment(fire.at, schedule.timezone, now) if fire.at else ""
            line += f" — next fires {when}" if when else f" — {fire.note}"
            if fire.at and fire.note:
                line += f" ({fire.note})"
        if schedule.parameters:
            line += f"\nparameters: {_pairs(schedule.parameters)}"
        rows.append((schedule.slug, line))
    if status.deployment and status.active_schedules == 0:
        rows.append(("", Text("paused on the server: no schedule is active", style="red")))
    return rows


def _form(schedule: Schedule) -> str:
    form = schedule.form
    if schedule.when is not None:
        return f"“{schedule.when}” ({form.text})"
    if form.kind is FormKind.EVERY:
        assert form.every_seconds is not None
        return f"every {_duration(form.every_seconds)}"
    if form.kind is FormKind.AT:
        assert form.at is not None
        return f"once at {form.at.astimezone(ZoneInfo(schedule.timezone)).strftime(TIME)}"
    return form.expression


def _quiet(quiet: QuietHours) -> str:
    window = "always" if quiet.always else f"{quiet.start:%H:%M}-{quiet.end:%H:%M}"
    if quiet.action is QuietAction.SKIP:
        return f"{window} {quiet.timezone}: ticks inside are skipped"
    return f"{window} {quiet.timezone}: ticks inside become one run at the window's end"


def _guard(a: Automate) -> list[Row]:
    rows: list[Row] = [
        ("timeout", f"{_duration(a.timeout_seconds)}: a run still going then ends TimedOut"),
        ("retries", _retries(a)),
    ]
    if a.schedules:
        rows.append(("misfire", _misfire(a)))
    rows.append(("concurrency", _concurrency(a)))
    rows.append(("approval", _approval(a)))
    rows.append(("quiet hours", _quiet(a.quiet_hours) if a.quiet_hours else "none"))
    rows.append(
        (
            "breaker",
            f"opens after {a.breaker_threshold} failed runs in a row (schedules paused), "
            f"one probe run after {_duration(a.breaker_cooldown_seconds)}",
        )
    )
    rows.append(
        (
            "soft fail",
            "yes: a non-zero exit means Findings, not a failure" if a.soft_fails else "no",
        )
    )
    if a.touches:
        rows.append(("touches", f"{', '.join(a.touches)}: also takes a PostgreSQL advisory lock"))
    return rows


def _retries(a: Automate) -> str:
    if a.retries == 0:
        return "none"
    return (
        f"{a.retries}, the first after {a.retry_backoff_seconds:g} s, each wait twice the one "
        "before (up to 25% jitter)"
    )


def _misfire(a: Automate) -> str:
    grace = f"a run starting up to {_duration(a.misfire_grace_seconds)} late is on time"
    if a.misfire is Misfire.CATCH_UP:
        what = (
            f"catch up: ticks missed while the layer was down run oldest first, at most "
            f"{CATCH_UP_LIMIT}; more than {CATCH_UP_LIMIT}, the oldest over 24 h old: held "
            "for review"
        )
    elif a.misfire is Misfire.FIRE_ONCE:
        what = "fire once: ticks missed while the layer was down become one run"
    else:
        what = "skip: ticks missed while the layer was down are not run"
    return f"{what} ({grace})"


def _concurrency(a: Automate) -> str:
    if a.concurrency is Concurrency.QUEUE_ONE:
        return "queue one: one run at a time, one more waits, further ones are skipped"
    if a.concurrency is Concurrency.REPLACE:
        return "replace: a new run cancels the active one"
    if a.concurrency is Concurrency.ALLOW:
        limit = "no limit" if a.concurrency_limit is None else f"up to {a.concurrency_limit}"
        return f"allow: runs overlap, {limit} at once"
    return "forbid: one run at a time; a run that starts while another is active is skipped"


def _approval(a: Automate) -> str:
    if a.approval is Approval.BEFORE_ENABLE:
        return f"before enable: its schedules stay inactive until `automates approve {a.name}`"
    if a.approval is Approval.BEFORE_FIRST_RUN:
        return (
            "before first run: the first run after each change waits for approval (the UI, "
            f"or `automates approve {a.name}`)"
        )
    return "none"


def _runbook(a: Automate, project_root: Path) -> str:
    if a.runbook is None:
        return "none declared"
    if not (project_root / a.runbook).is_file():
        return f"{a.runbook} (not found in the checkout)"
    return a.runbook


def _runs(status: AutomateStatus, now: datetime) -> list[Row]:
    a = status.automate
    if not a.kind.deployable:
        return [("", "a lib is never deployed nor run")]
    if status.deployment is None:
        return [("deployment", "not on the server (`automates sync` deploys it)")]
    rows: list[Row] = [("deployment", status.deployment)]
    if a.schedules:
        rows.append(
            ("active", f"{status.active_schedules} of {len(a.schedules)} schedule(s) active")
        )
    if status.next_runs:
        rows.append(("scheduled", "\n".join(t.strftime(TIME) for t in status.next_runs)))
    last = "none yet"
    if status.last_run_state:
        at = _moment(status.last_run_at, "UTC", now) if status.last_run_at else ""
        last = f"{status.last_run_state}, {at}" if at else status.last_run_state
    rows.append(("last run", last))
    failed = f", {status.failed_runs} failed or crashed" if status.runs else ""
    rows.append(("runs", f"{status.runs}{failed}; `automates logs {a.name}` lists them"))
    return rows


def _moment(at: datetime | None, timezone: str, now: datetime) -> str:
    if at is None:
        return ""
    shown = at.astimezone(ZoneInfo(timezone)).strftime(TIME)
    return f"{shown} ({_relative(at - now)})"


def _relative(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    ahead = seconds >= 0
    seconds = abs(seconds)
    if seconds < 60:
        amount = f"{seconds} s"
    elif seconds < 3600:
        amount = f"{seconds // 60} min"
    elif seconds < 48 * 3600:
        amount = f"{seconds // 3600} h"
    else:
        amount = f"{seconds // 86400} days"
    return f"in {amount}" if ahead else f"{amount} ago"


def _duration(seconds: int) -> str:
    """`90` as "1 min 30 s", `5400` as "1 h 30 min": the two largest units."""
    units = [("day", 86400), ("h", 3600), ("min", 60), ("s", 1)]
    parts = []
    for unit, size in units:
        count, seconds = divmod(seconds, size)
        if count:
            plural = "s" if unit == "day" and count > 1 else ""
            parts.append(f"{count} {unit}{plural}")
    return " ".join(parts[:2]) or "0 s"


def _pairs(values: Mapping[str, object]) -> str:
    return ", ".join(f"{key}={json.dumps(value, default=str)}" for key, value in values.items())


def _or(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
