"""The guard's misfire pre-check: a run that starts long after its tick follows the automate's
misfire policy (automates/scheduling/misfire.py).

A run is a misfire when it comes from a schedule (Prefect's scheduler sets `auto_scheduled` and
the idempotency key `scheduled <deployment> <schedule> <time>`) and its first start
(`start_time`, kept across a suspension, so an approval wait is not lateness) is more than
`misfire_grace_seconds` after its tick (`expected_start_time`: the scheduled time, jitter
included). Manual runs, deferred quiet-hours runs and the runs this check creates are let
through. An on-time run costs no API call.

For a misfire the check reads, through the Prefect API, the outage the tick was missed in: the
last run start at or before the tick fell due and the first start after it (the recovery;
`outage_around`). The outage's missed ticks are

- the runs Prefect created and left late: runs from a schedule (or created here) whose ticks
  fell due inside the outage and that did not start within the grace;
- the ticks never created (Prefect's scheduler only creates runs forward from now, so after a
  long server outage the ticks in the gap never became runs): the deployment's active
  schedules' ticks inside the outage with no run, computed as the preview computes them, no
  earlier than the schedule's last change (a paused schedule misses nothing) and at most
  GAP_LOOKBACK back (older runs may have been deleted by retention).

Why every late run of one outage takes the same decision, whichever asks first: both bounds
are run starts that no late run of the outage can move (no run started between them, and a
late run's own start is the recovery or after it), and each run asks after its own start has
been recorded, so the first start after the outage is already visible to all of them. The set
of ticks is then a function of those bounds and of runs created before the outage, and the
rule is a function of the set and the recovery moment, not of which run asks. The runs created
here for never-created ticks carry an idempotency key per deployment, schedule and tick, so
concurrent deciders create each at most once, and they count as that tick when read back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.states import Completed

from automates.guard import catch_up
from automates.guard.catch_up import TAGS
from automates.guard.context import RunContext
from automates.guard.hold import hold_for_review
from automates.guard.quiet_hours import DEFERRED_TAG
from automates.registry.policy import GuardPolicy
from automates.scheduling.misfire import (
    Decision,
    Fate,
    Misfire,
    MissedTick,
    Outage,
    decide,
    outage_around,
    show,
    utc,
)
from automates.scheduling.preview import TooManyTicks, ticks_between

GAP_LOOKBACK = timedelta(days=7)
MAX_GAP_TICKS = 100_000


class MisfireCheck:
    """A run that starts long after its tick follows the automate's misfire policy."""

    name = "misfire"

    def check(self, run: RunContext) -> State | None:
        flow_run = run.flow_run
        if flow_run is None or not from_schedule(flow_run) or flow_run.expected_start_time is None:
            return None
        policy = run.policy
        tick = utc(flow_run.expected_start_time)
        started = utc(flow_run.start_time or datetime.now(UTC))
        grace = timedelta(seconds=policy.misfire_grace_seconds)
        if started - tick <= grace:
            return None
        mine = MissedTick(at=tick, schedule=schedule_of(flow_run))
        if policy.misfire is Misfire.SKIP or flow_run.deployment_id is None:
            # Every missed tick is skipped: the outage's other ticks change nothing.
            decision = decide(Misfire.SKIP, [mine], recovered_at=started)
            return _skipped(policy, decision, mine, started)
        decision, taken, schedules = _decide_outage(run, flow_run, mine, started, grace)
        if decision.hold:
            return hold_for_review(run, decision)
        catch_up.create_missing_runs(run, decision, taken, schedules)
        ruling = decision.ruling(mine)
        if ruling is None or ruling.fate is Fate.RUN:
            run.logger.info(
                "missed tick %s runs: misfire policy %s, %s",
                show(tick),
                policy.misfire.value,
                decision.summary if ruling is None else f"{ruling.reason}; {decision.summary}",
            )
            return catch_up.wait_for_older(run, decision, mine)
        return _skipped(policy, decision, mine, started)


class SkipPolicyMisfireCheck:
    """The misfire check where it needs nothing but the run itself: under the `skip` policy a
    run past its grace ends Skipped whatever else the outage missed. Under the other policies
    it answers nothing (the decision reads the outage, may wait or hold: the run's process asks
    MisfireCheck). A worker asks it before it starts the run's process (guard/runner.py)."""

    name = "misfire"

    def check(self, run: RunContext) -> State | None:
        if run.policy.misfire is not Misfire.SKIP:
            return None
        return MisfireCheck().check(run)


def from_schedule(flow_run: Any) -> bool:
    """Whether the run stands for a tick of a schedule (and so can be a misfire)."""
    tags = set(flow_run.tags or ())
    if tags & set(TAGS.values()) or DEFERRED_TAG in tags:
        return False
    key = flow_run.idempotency_key or ""
    return bool(flow_run.auto_scheduled) or key.startswith("scheduled ")


def schedule_of(flow_run: Any) -> str:
    """The id of the deployment schedule a run stands for, from its idempotency key
    (`scheduled|misfire <deployment> <schedule> <time>`); "" when unknown."""
    parts = (flow_run.idempotency_key or "").split(" ")
    if len(parts) >= 4 and parts[0] in ("scheduled", "misfire"):
        return parts[2]
    created_by = getattr(flow_run, "created_by", None)
    if created_by is not None and created_by.type == "SCHEDULE" and created_by.id:
        return str(created_by.id)
    return ""


def _decide_outage(
    run: RunContext,
    flow_run: FlowRun,
    mine: MissedTick,
    started: datetime,
    grace: timedelta,
) -> tuple[Decision, set[datetime], dict[str, Any]]:
    """The decision for the outage this run's tick was missed in; the ticks that have a run;
    the deployment's schedules by id."""
    assert flow_run.deployment_id is not None
    orchestrator = run.orchestrator
    deployment = orchestrator.read_deployment(flow_run.deployment_id)
    overdue = mine.at + grace
    nearest = orchestrator.starts_around(flow_run.deployment_id, overdue)
    outage = outage_around(overdue, [started, *(utc(at) for at in nearest)])
    runs = orchestrator.runs_due_between(
        flow_run.deployment_id,
        outage.last_start - grace if outage.last_start else None,
        outage.recovered_at - grace,
    )
    ticked = [r for r in runs if _stands_for_a_tick(r)]
    taken = {utc(r.expected_start_time) for r in ticked if r.expected_start_time}
    missed = [
        MissedTick(at=r.expected_start_time, schedule=schedule_of(r))
        for r in ticked
        if r.expected_start_time and _missed(r, outage, grace)
    ]
    schedules = {str(s.id): s for s in deployment.schedules}
    if not deployment.paused:
        missed += _never_created(run, deployment.schedules, outage, grace, taken)
    missed.append(mine)  # its own tick, whatever the reads above saw
    return decide(run.policy.misfire, missed, outage.recovered_at), taken, schedules


def _stands_for_a_tick(flow_run: Any) -> bool:
    return from_schedule(flow_run) or bool(set(flow_run.tags or ()) & set(TAGS.values()))


def _missed(flow_run: Any, outage: Outage, grace: timedelta) -> bool:
    tick = utc(flow_run.expected_start_time)
    if not outage.missed(tick, grace):
        return False
    if flow_run.start_time is not None:
        return utc(flow_run.start_time) - tick > grace
    # Never started: still waiting (a missed tick), or cancelled by hand (not one).
    return flow_run.state_type in (StateType.SCHEDULED, StateType.PENDING, None)


def _never_created(
    run: RunContext, schedules: list[Any], outage: Outage, grace: timedelta, taken: set[datetime]
) -> list[MissedTick]:
    end = outage.recovered_at - grace
    found: list[MissedTick] = []
    for schedule in schedules:
        if not schedule.active:
            continue
        # A schedule misses nothing while it is paused or before it exists: its last change
        # (created, or re-activated) bounds the gap.
        since = schedule.updated or schedule.created or end
        start = max(utc(since), outage.recovered_at - GAP_LOOKBACK)
        if outage.last_start is not None:
            start = max(start, outage.last_start - grace)
        try:
            dates = ticks_between(schedule.schedule, start, end, limit=MAX_GAP_TICKS)
        except TooManyTicks:
            run.logger.warning(
                "schedule %s has too many ticks in the outage to look for never-created ones; "
                "only the runs Prefect created count",
                schedule.slug or schedule.id,
            )
            continue
        found += [
            MissedTick(at=at, schedule=str(schedule.id))
            for at in dates
            if at not in taken and outage.missed(at, grace)
        ]
    return found


def _skipped(policy: GuardPolicy, decision: Decision, mine: MissedTick, started: datetime) -> State:
    late = (started - mine.at).total_seconds()
    return Completed(
        name="Skipped",
        message=f"skipped: missed tick {show(mine.at)} (misfire policy {policy.misfire.value}, "
        f"started {late:.0f} s after it, grace {policy.misfire_grace_seconds} s; "
        f"{decision.summary})",
    )
