"""Duration rules: durations drifting upward, and runs ending close to their timeout."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from statistics import median

from automates.audit.model import Finding, Journals, Rule
from automates.settings.groups import AuditSettings
from automates.states import SUCCESS, RunOutcome

RECENT_DAYS = 7
BASELINE_DAYS = 28
# A run that ran to its end: a timed-out one reached its timeout (a failure), and a skipped,
# cancelled or crashed one says nothing of how long the work takes.
ENDED = frozenset({RunOutcome.COMPLETED, RunOutcome.FINDINGS, RunOutcome.FAILED})


def duration_drift(journals: Journals, settings: AuditSettings) -> list[Finding]:
    """Automates whose successful runs of the last 7 days have a median over `drift_factor`
    times the median of the 28 days before, each period with `drift_min_runs` runs or more."""
    recent_from = journals.now - timedelta(days=RECENT_DAYS)
    baseline_from = recent_from - timedelta(days=BASELINE_DAYS)
    recent: dict[str, list[float]] = defaultdict(list)
    baseline: dict[str, list[float]] = defaultdict(list)
    for run in journals.runs:
        if run.outcome not in SUCCESS or run.finished_at <= baseline_from:
            continue
        period = recent if run.finished_at > recent_from else baseline
        period[run.automate].append(run.duration_seconds)
    findings = []
    for automate in sorted(recent):
        now_runs, before_runs = recent[automate], baseline.get(automate, [])
        if min(len(now_runs), len(before_runs)) < settings.drift_min_runs:
            continue
        now_median, before_median = median(now_runs), median(before_runs)
        if now_median < settings.drift_min_seconds:
            continue
        if now_median <= settings.drift_factor * before_median:
            continue
        ratio = f"{now_median / before_median:.1f}x" if before_median else "up from"
        findings.append(
            Finding(
                Rule.DURATION_DRIFT,
                f"median duration {now_median:.1f} s over the last {RECENT_DAYS} days, "
                f"{ratio} the {before_median:.1f} s of the {BASELINE_DAYS} days before",
                automate=automate,
                facts={
                    "recent_median_seconds": now_median,
                    "baseline_median_seconds": before_median,
                    "recent_runs": len(now_runs),
                    "baseline_runs": len(before_runs),
                },
            )
        )
    return findings


def near_timeout(journals: Journals, settings: AuditSettings) -> list[Finding]:
    """Automates with runs of the recent window that ended after `timeout_fraction` of their
    declared timeout: the next slower one will time out."""
    since = journals.now - timedelta(hours=settings.recent_hours)
    timeouts = {declared.automate: declared.timeout_seconds for declared in journals.declared}
    close: dict[str, list[float]] = defaultdict(list)
    for run in journals.runs:
        timeout = timeouts.get(run.automate)
        if timeout is None or run.outcome not in ENDED or run.finished_at <= since:
            continue
        if run.duration_seconds >= settings.timeout_fraction * timeout:
            close[run.automate].append(run.duration_seconds)
    return [
        Finding(
            Rule.NEAR_TIMEOUT,
            f"{len(durations)} run(s) in the last {settings.recent_hours} h ended after "
            f"{settings.timeout_fraction:.0%} or more of its {timeouts[automate]} s timeout "
            f"(the longest {max(durations):.0f} s)",
            automate=automate,
            facts={
                "runs": len(durations),
                "longest_seconds": max(durations),
                "timeout_seconds": timeouts[automate],
            },
        )
        for automate, durations in sorted(close.items())
    ]
