"""Every alert the layer raises, worded once: one constructor per kind, used where the fact is
written (the guard's journal, the breaker, holds, the dead-man check, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from automates.alerts.outbox import Alert
from automates.registry.alert_kinds import AlertKind
from automates.states import RunOutcome

_OUTCOME_KINDS: dict[str, AlertKind] = {
    RunOutcome.COMPLETED: AlertKind.RUN_COMPLETED,
    RunOutcome.FINDINGS: AlertKind.RUN_FINDINGS,
    RunOutcome.FAILED: AlertKind.RUN_FAILED,
    RunOutcome.TIMED_OUT: AlertKind.RUN_FAILED,
    RunOutcome.CRASHED: AlertKind.RUN_FAILED,
}
_OUTCOME_WORDS: dict[str, str] = {
    RunOutcome.COMPLETED: "completed",
    RunOutcome.FINDINGS: "has findings",
    RunOutcome.FAILED: "failed",
    RunOutcome.TIMED_OUT: "timed out",
    RunOutcome.CRASHED: "crashed",
}


def run_outcome(
    automate: str, outcome: str, message: str | None, flow_run_id: UUID | None, **facts: Any
) -> Alert | None:
    """A finished run (None for skipped and cancelled runs: nothing to tell)."""
    kind = _OUTCOME_KINDS.get(outcome)
    if kind is None:
        return None
    summary = (message or "").strip() or "(no message)"
    return Alert(
        kind=kind,
        automate=automate,
        title=f"{automate} {_OUTCOME_WORDS[outcome]}",
        body=f"{automate} {_OUTCOME_WORDS[outcome]}: {summary}",
        reason=f"{outcome} {summary}",
        flow_run_id=flow_run_id,
        facts={"outcome": outcome, **facts},
    )


def breaker_opened(automate: str, failures: int, cooldown_seconds: int) -> Alert:
    return Alert(
        kind=AlertKind.BREAKER_OPENED,
        automate=automate,
        title=f"{automate}: circuit breaker opened, schedules paused",
        body=(
            f"{automate} failed {failures} times in a row: its schedules are paused. A probe run "
            f"starts after {cooldown_seconds} s; `automates breaker reset {automate}` resumes "
            "it now."
        ),
        reason="opened",
        facts={"consecutive_failures": failures},
    )


def breaker_closed(automate: str) -> Alert:
    return Alert(
        kind=AlertKind.BREAKER_CLOSED,
        automate=automate,
        title=f"{automate}: resolved, circuit breaker closed",
        body=f"{automate} runs again: its circuit breaker closed and its schedules resumed.",
        reason="closed",
    )


def held(automate: str, detail: str) -> Alert:
    return Alert(
        kind=AlertKind.HELD,
        automate=automate,
        title=f"{automate}: held for review, schedules paused",
        body=f"{automate} is held: {detail} `automates release {automate}` resumes it.",
        reason="held",
    )


def released(automate: str, by: str) -> Alert:
    return Alert(
        kind=AlertKind.RELEASED,
        automate=automate,
        title=f"{automate}: resolved, released by {by}",
        body=f"{automate} was released by {by}: its schedules resumed.",
        reason="released",
    )


def approval_waiting(automate: str, flow_run_id: UUID | None, stage: str) -> Alert:
    if stage == "before_enable":
        how = f"its schedules stay inactive until `automates approve {automate}`."
    else:
        how = (
            f"`automates approve {automate}` or the run's Resume button in the Prefect UI "
            "lets it go on."
        )
    return Alert(
        kind=AlertKind.APPROVAL_WAITING,
        automate=automate,
        title=f"{automate}: waiting for approval",
        body=f"{automate} waits for approval ({stage}): {how}",
        reason=stage,
        flow_run_id=flow_run_id,
    )


def approval_decided(automate: str, by: str, *, approved: bool = True) -> Alert:
    verdict = "approved" if approved else "rejected (this run)"
    return Alert(
        kind=AlertKind.APPROVAL_DECIDED,
        automate=automate,
        title=f"{automate}: resolved, {verdict} by {by}",
        body=f"{automate} was {verdict} by {by}.",
        reason=verdict,
    )


def missed_ticks(automate: str, schedule: str, ticks: Sequence[str], detail: str) -> Alert:
    shown = ", ".join(ticks[:10]) + (f" and {len(ticks) - 10} more" if len(ticks) > 10 else "")
    return Alert(
        kind=AlertKind.MISSED_TICK,
        automate=automate,
        title=f"{automate}: missed tick(s) of schedule {schedule}",
        body=f"{automate} did not run at {shown} (schedule {schedule}): {detail}",
        reason=f"missed {schedule}",
        facts={"schedule": schedule, "ticks": list(ticks)},
    )


def tick_recovered(automate: str, flow_run_id: UUID | None) -> Alert:
    return Alert(
        kind=AlertKind.TICK_RECOVERED,
        automate=automate,
        title=f"{automate}: resolved, ran again on schedule",
        body=f"{automate} completed a run after missed ticks.",
        reason="recovered",
        flow_run_id=flow_run_id,
    )


def browser_job_lost(job_id: Any, kind: str, flow_run_id: UUID | None, detail: str) -> Alert:
    return Alert(
        kind=AlertKind.BROWSER_JOB_LOST,
        automate=None,
        title=f"browser job {kind} lost",
        body=f"Browser job {job_id} ({kind}) was lost: {detail}. It is not re-run.",
        reason=f"lost {kind}",
        flow_run_id=flow_run_id,
        facts={"job_id": str(job_id)},
    )


def task_run(kind: AlertKind, agent: str, codename: str, detail: str, **facts: Any) -> Alert:
    what = "refused: over budget" if kind is AlertKind.TASK_RUN_OVER_BUDGET else "killed"
    return Alert(
        kind=kind,
        automate=None,
        title=f"task run {codename} of agent {agent} {what}",
        body=f"Task run {codename} of agent {agent} {what}: {detail}",
        reason=f"{agent} {codename} {detail}",
        facts={"agent": agent, "codename": codename, **facts},
    )


def reconcile_drift(findings: Sequence[str]) -> Alert:
    shown = "\n".join(f"- {line}" for line in findings[:30])
    more = f"\n… and {len(findings) - 30} more" if len(findings) > 30 else ""
    return Alert(
        kind=AlertKind.RECONCILE_DRIFT,
        automate=None,
        title=f"registry drift: {len(findings)} finding(s)",
        body=f"Declared and deployed differ:\n{shown}{more}",
        reason="\n".join(sorted(findings)),
    )


def reconcile_clean() -> Alert:
    return Alert(
        kind=AlertKind.RECONCILE_CLEAN,
        automate=None,
        title="resolved: registry and server agree again",
        body="registry-reconcile found no drift.",
        reason="clean",
    )


def component_crash_loop(component: str, reason: str, log_file: str) -> Alert:
    return Alert(
        kind=AlertKind.COMPONENT_CRASH_LOOP,
        automate=None,
        subject=component,
        title=f"{component} is in a crash loop and was stopped",
        body=(
            f"The layer's {component} {reason}. It is stopped until an operator starts it "
            f"again with `automates up`; its log is {log_file}."
        ),
        reason=f"crash loop {component}",
        facts={"component": component, "log": log_file},
    )


def component_recovered(component: str) -> Alert:
    return Alert(
        kind=AlertKind.COMPONENT_RECOVERED,
        automate=None,
        subject=component,
        title=f"{component}: resolved, running again",
        body=f"The layer's {component} was started again and runs.",
        reason=f"recovered {component}",
        facts={"component": component},
    )


def service_crash_loop(automate: str, reason: str, flow_run_id: UUID | None) -> Alert:
    return Alert(
        kind=AlertKind.COMPONENT_CRASH_LOOP,
        automate=automate,
        title=f"service {automate} is in a crash loop and was stopped",
        body=(
            f"The service {automate} {reason}. Its loop run was stopped (state CrashLoop) and "
            "nothing restarts it until an operator runs `automates sync`; the run's log in the "
            "Prefect UI shows each exit."
        ),
        reason=f"crash loop service {automate}",
        flow_run_id=flow_run_id,
        facts={"service": automate, "why": reason},
    )


def service_recovered(automate: str) -> Alert:
    return Alert(
        kind=AlertKind.COMPONENT_RECOVERED,
        automate=automate,
        title=f"service {automate}: resolved, running again",
        body=f"The service {automate} was started again and runs.",
        reason=f"recovered service {automate}",
        facts={"service": automate},
    )
