"""`automates preview | schedules`: what the schedules became and when they will fire, and
`preview --simulate-outage`: what the misfire policy does with the ticks of an outage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.table import Table

from automates.cli.output import JsonOption, console, emit_json, handle_errors, load_settings
from automates.errors import ScheduleSpecError, UnknownAutomateError
from automates.registry.model import Automate
from automates.registry.targets import automate_schedules, spec_schedule
from automates.scheduling.misfire import DEFAULT_GRACE_SECONDS, Misfire
from automates.scheduling.preview import (
    OutagePreview,
    PreviewSchedule,
    TickStatus,
    TooManyTicks,
    preview,
    simulate_outage,
)
from automates.scheduling.quiet_hours import QuietAction, QuietHours
from automates.scheduling.realise import prefect_yaml_fields
from automates.store.declared import declared_registry

app = typer.Typer()
QuietActionOption = typer.Option(
    QuietAction.SKIP, "--quiet-action", help="A SPEC: skip or defer quiet ticks."
)
MisfireOption = typer.Option(
    Misfire.SKIP, "--misfire", help="A SPEC: the misfire policy of --simulate-outage."
)


@app.command("preview")
@handle_errors
def preview_command(
    target: str = typer.Argument(
        ...,
        metavar="NAME|SPEC",
        help="A declared automate, or a schedule: a cron, "
        "'every 15m', an RFC 3339 time or a phrase ('every weekday at 9').",
    ),
    tz: str | None = typer.Option(
        None, "--tz", help="Show times in this IANA timezone (a SPEC: its timezone too)."
    ),
    from_: str | None = typer.Option(
        None, "--from", help="Start here (RFC 3339; without offset: in --tz). Default: now."
    ),
    count: int = typer.Option(10, "--count", min=1, max=1000, help="How many fire times."),
    jitter: int = typer.Option(0, "--jitter", min=0, help="A SPEC: jitter_seconds."),
    quiet: str | None = typer.Option(
        None, "--quiet", metavar="HH:MM-HH:MM", help="A SPEC: quiet hours, in --quiet-tz."
    ),
    quiet_tz: str = typer.Option("UTC", "--quiet-tz", help="A SPEC: the quiet hours' zone."),
    quiet_action: QuietAction = QuietActionOption,
    outage: tuple[str, str] | None = typer.Option(
        None,
        "--simulate-outage",
        metavar="FROM TO",
        help="What the misfire policy does if nothing runs from FROM to TO (RFC 3339; "
        "without offset: in --tz).",
    ),
    misfire: Misfire = MisfireOption,
    grace: int = typer.Option(
        DEFAULT_GRACE_SECONDS,
        "--grace",
        min=1,
        max=24 * 3600,
        help="A SPEC: misfire_grace_seconds for --simulate-outage.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """The next fire times after jitter, quiet hours and DST; skipped or deferred ticks say why.
    With --simulate-outage: which missed ticks run, which are skipped, and whether it holds."""
    zone = _zone(tz) if tz else None
    if outage is not None and from_ is not None:
        raise ScheduleSpecError("--from: not with --simulate-outage, whose FROM is the start")
    span = _outage_span(outage, zone) if outage is not None else None
    start = span[0] if span is not None else _start(from_, zone)
    settings = load_settings()
    automate = declared_registry(settings).get(target)
    if automate is not None:
        schedules = automate_schedules(automate)
        quiet_hours = automate.quiet_hours
        misfire, grace = automate.misfire, automate.misfire_grace_seconds
        if not schedules:
            raise UnknownAutomateError(f"automate {target!r} has no schedule to preview")
    else:
        schedule_zone = tz or "UTC"
        try:
            schedules = [
                spec_schedule(target, timezone=schedule_zone, jitter_seconds=jitter, now=start)
            ]
        except ScheduleSpecError as error:
            raise ScheduleSpecError(
                f"{target!r} is not a declared automate, nor a schedule: {error}"
            ) from None
        quiet_hours = _quiet(quiet, quiet_tz, quiet_action)
    if span is not None:
        simulated = _simulate(schedules, span, misfire, grace, quiet_hours)
        _show_outage(target, schedules, simulated, count, tz, as_json)
        return
    ticks = asyncio.run(preview(schedules, start=start, count=count, quiet=quiet_hours))
    shown_zone = tz
    if as_json:
        emit_json(
            {
                "target": target,
                "from": start.isoformat(),
                "schedules": [_schedule_dict(s) for s in schedules],
                "quiet_hours": quiet_hours.model_dump(mode="json") if quiet_hours else None,
                "ticks": [t.as_dict(shown_zone) for t in ticks],
            }
        )
        return
    for schedule in schedules:
        console.print(_schedule_line(schedule), highlight=False)
    if quiet_hours:
        console.print(f"{quiet_hours.label}: {quiet_hours.action.value}", highlight=False)
    table = Table("schedule", "fires at", "status", "why")
    for tick in ticks:
        shown = tick.as_dict(shown_zone)
        status = tick.status.value
        if tick.status is TickStatus.DEFER:
            status += f" → {shown['runs_at']}"
        table.add_row(tick.schedule, shown["local"], status, tick.reason or "")
    console.print(table)


def _outage_span(outage: tuple[str, str], zone: ZoneInfo | None) -> tuple[datetime, datetime]:
    start, end = (_moment("--simulate-outage", text, zone) for text in outage)
    if end <= start:
        raise ScheduleSpecError(
            f"--simulate-outage: TO ({outage[1]}) must be after FROM ({outage[0]})"
        )
    return start, end


def _simulate(
    schedules: list[PreviewSchedule],
    span: tuple[datetime, datetime],
    misfire: Misfire,
    grace: int,
    quiet: QuietHours | None,
) -> OutagePreview:
    try:
        return asyncio.run(
            simulate_outage(
                schedules,
                start=span[0],
                end=span[1],
                policy=misfire,
                grace_seconds=grace,
                quiet=quiet,
            )
        )
    except TooManyTicks as error:
        raise ScheduleSpecError(f"--simulate-outage: {error}") from None


def _show_outage(
    target: str,
    schedules: list[PreviewSchedule],
    simulated: OutagePreview,
    count: int,
    tz: str | None,
    as_json: bool,
) -> None:
    decision = simulated.decision
    if as_json:
        emit_json(
            {
                "target": target,
                "outage": {"from": simulated.start.isoformat(), "to": simulated.end.isoformat()},
                "misfire": decision.policy.value,
                "grace_seconds": simulated.grace_seconds,
                "schedules": [_schedule_dict(s) for s in schedules],
                "missed": len(decision.rulings),
                "run": len(decision.to_run),
                "hold": decision.hold,
                "summary": decision.summary,
                "resumes_at": simulated.resumes_at.isoformat() if simulated.resumes_at else None,
                "ticks": [t.as_dict(tz) for t in simulated.ticks],
            }
        )
        return
    for schedule in schedules:
        console.print(_schedule_line(schedule), highlight=False)
    console.print(
        f"outage {simulated.start.isoformat()} → {simulated.end.isoformat()}: misfire policy "
        f"{decision.policy.value}, grace {simulated.grace_seconds} s",
        highlight=False,
    )
    console.print(decision.summary, highlight=False)
    if decision.hold:
        console.print(
            "HOLD: the automate would be held for operator review (schedules paused until "
            "`automates release`)",
            highlight=False,
        )
    if simulated.resumes_at is not None:
        shown = simulated.resumes_at.astimezone(ZoneInfo(tz or schedules[0].timezone))
        console.print(f"then on time from {shown.isoformat()}", highlight=False)
    # The newest ticks: where catch_up's and fire_once's runs are.
    hidden = max(0, len(simulated.ticks) - count)
    table = Table("schedule", "tick", "fate", "why")
    for tick in simulated.ticks[hidden:]:
        shown_tick = tick.as_dict(tz)
        table.add_row(tick.schedule, shown_tick["local"], tick.fate, tick.reason)
    if hidden:
        console.print(f"({hidden} older ticks not shown; --count shows more)", highlight=False)
    console.print(table)


@app.command("schedules")
@handle_errors
def schedules_command(
    name: str | None = typer.Argument(None, help="One automate (default: all scheduled)."),
    as_json: bool = JsonOption,
) -> None:
    """What each declared schedule became: the form, the jitter and the Prefect schedule."""
    registry = declared_registry(load_settings())
    chosen: list[Automate]
    if name is not None:
        automate = registry.get(name)
        if automate is None:
            known = ", ".join(a.name for a in registry.automates)
            raise UnknownAutomateError(f"no automate named {name!r} is declared (known: {known})")
        chosen = [automate]
    else:
        chosen = [a for a in registry.automates if a.schedules]
    rows = [
        {"automate": a.name, **_schedule_dict(s), "quiet_hours": _quiet_dict(a)}
        for a in chosen
        for s in automate_schedules(a)
    ]
    if as_json:
        emit_json(rows)
        return
    table = Table("automate", "schedule", "became", "timezone", "jitter", "quiet hours")
    for row in rows:
        table.add_row(
            row["automate"],
            row["slug"],
            row["became"],
            row["timezone"],
            f"+{row['offset_seconds']} s",
            row["quiet_hours"] or "-",
        )
    console.print(table)


def _schedule_dict(schedule: PreviewSchedule) -> dict[str, Any]:
    return {
        "slug": schedule.slug,
        "became": schedule.became,
        "form": schedule.form.model_dump(mode="json", exclude_none=True),
        "timezone": schedule.timezone,
        "offset_seconds": schedule.offset_seconds,
        "prefect_schedule": prefect_yaml_fields(schedule.prefect),
    }


def _schedule_line(schedule: PreviewSchedule) -> str:
    prefect = ", ".join(f"{k}={v}" for k, v in prefect_yaml_fields(schedule.prefect).items())
    return (
        f"{schedule.slug}: {schedule.became}, jitter +{schedule.offset_seconds} s "
        f"→ Prefect {prefect}"
    )


def _quiet_dict(automate: Automate) -> str | None:
    quiet = automate.quiet_hours
    return f"{quiet.label}: {quiet.action.value}" if quiet else None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleSpecError(f"--tz: {name!r} is not an IANA timezone") from None


def _start(text: str | None, zone: ZoneInfo | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    return _moment("--from", text, zone)


def _moment(option: str, text: str, zone: ZoneInfo | None) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ScheduleSpecError(f"{option}: {text!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone or UTC)
    return moment.astimezone(UTC)


def _quiet(window: str | None, zone: str, action: QuietAction) -> QuietHours | None:
    if window is None:
        return None
    start, sep, end = window.partition("-")
    try:
        if not sep:
            raise ValueError("write it as HH:MM-HH:MM")
        return QuietHours.model_validate(
            {"start": start, "end": end, "timezone": zone, "action": action}
        )
    except ValueError as error:
        raise ScheduleSpecError(f"--quiet {window!r}: {error}") from None
