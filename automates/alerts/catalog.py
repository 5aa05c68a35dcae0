"""Every alert the layer raises, worded once: one constructor per kind, used where the fact is
written (the guard's journal, the breaker, holds, the dead-man check, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from automates.alerts.outbox import Alert
from automates.audit.model import Finding
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


def llm_over_budget(agent: str, model: str, detail: str) -> Alert:
    return Alert(
        kind=AlertKind.LLM_OVER_BUDGET,
        automate=None,
        title=f"LLM call of agent {agent} refused: over budget",
        body=f"A call of the LLM facade by agent {agent} ({model}) was refused: {detail}",
        reason=f"{agent} {model}",
        facts={"agent": agent, "model": model},
    )


def spend_threshold(
    kind: AlertKind, agent: str | None, spent: Decimal, threshold: float, day: date
) -> Alert:
    """An agent's (None: the platform's) spend of `day` passed its warn or critical threshold."""
    level = "critical" if kind is AlertKind.SPEND_CRITICAL else "warning"
    who = f"agent {agent}" if agent else "the platform"
    return Alert(
        kind=kind,
        automate=None,
        subject=_spender(agent),
        title=f"{who} spent ${spent:.2f} today: over its {level} threshold of ${threshold:.2f}",
        body=(
            f"{who.capitalize()} spent ${spent:.2f} on {day.isoformat()} (UTC, task runs and LLM "
            f"facade calls), past its {level} threshold of ${threshold:.2f}. "
            "`automates task-run list` shows the task runs; AUTOMATES_SPEND_* sets the "
            "thresholds."
        ),
        # The weekday keeps two days' alerts apart for a route's de-duplication (a date is
        # normalised away, as a volatile part).
        reason=f"{who} over {level} on {day:%A}",
        facts={
            "agent": agent,
            "level": level,
            "day": day.isoformat(),
            "spent_usd": f"{spent:.4f}",
            "threshold_usd": threshold,
        },
    )


def _spender(agent: str | None) -> str:
    """The subject of a condition about spend: an agent, or the platform."""
    return f"agent:{agent}" if agent else "platform"


def audit_finding(finding: Finding, flow_run_id: UUID | None) -> Alert:
    """One finding of the nightly journal audit (automates/audit/)."""
    return Alert(
        kind=AlertKind.AUDIT_FINDING,
        automate=finding.automate,
        subject=None if finding.automate else _spender(finding.agent),
        title=f"journal audit: {finding.subject}: {finding.rule.value.replace('_', ' ')}",
        body=f"{finding.subject}: {finding.message}. The morning report is the artifact "
        "`journal-audit` of this run.",
        reason=f"{finding.rule.value} {finding.subject} {finding.message}",
        flow_run_id=flow_run_id,
        facts={"rule": finding.rule.value, "agent": finding.agent, **finding.facts},
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


def backup_stale(detail: str, max_age_days: float, folder: str) -> Alert:
    return Alert(
        kind=AlertKind.BACKUP_STALE,
        automate=None,
        subject="backups",
        title=f"no backup proven by a restore drill in the last {max_age_days:g} days",
        body=(
            f"{detail} (backup folder {folder}). Until a drill passes, the layer has no backup "
            "known to restore: see docs/runbooks/backup-verify.md."
        ),
        reason="stale",
        facts={"max_age_days": max_age_days, "folder": folder},
    )


def backup_fresh(name: str) -> Alert:
    return Alert(
        kind=AlertKind.BACKUP_FRESH,
        automate=None,
        subject="backups",
        title="resolved: a recent backup passed its restore drill",
        body=f"Backup {name} was restored and checked against its manifest.",
        reason="fresh",
        facts={"backup": name},
    )


def backup_drill_failed(name: str | None, problems: Sequence[str]) -> Alert:
    what = f"backup {name}" if name else "the newest backup"
    shown = "\n".join(f"- {line}" for line in problems[:20])
    return Alert(
        kind=AlertKind.BACKUP_DRILL_FAILED,
        automate=None,
        subject="backups",
        title=f"restore drill of {what} failed",
        body=f"The restore drill of {what} failed:\n{shown}\nSee runbooks/backup-verify.md.",
        reason="\n".join(problems[:5]),
        facts={"backup": name, "problems": list(problems[:20])},
    )


def backup_drill_passed(name: str, restore_seconds: float | None) -> Alert:
    return Alert(
        kind=AlertKind.BACKUP_DRILL_PASSED,
        automate=None,
        subject="backups",
        title=f"resolved: restore drill of backup {name} passed",
        body=f"Backup {name} was restored in {restore_seconds} s and matches its manifest.",
        reason="passed",
        facts={"backup": name, "restore_seconds": restore_seconds},
    )
