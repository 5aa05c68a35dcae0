"""journal-audit: every night, what the journals say, as the morning report and as alerts.

It reads the execution and crash journals, the breakers' openings and closings (their alerts in
the outbox; the `breakers` table holds only the current state), the declarations and the
agents' spend, and hands them to the rules of `automates/audit/` (decision 0046). An audit:
findings end the run Completed, named "Findings", never Failed. The report is the artifact
`journal-audit`; each finding is also one `audit_finding` alert, written to the outbox with
the others in one transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from statistics import median

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.states import Completed, State
from sqlalchemy import Connection

from automates.alerts import catalog
from automates.alerts.outbox import raise_alert
from automates.audit.durations import BASELINE_DAYS, RECENT_DAYS
from automates.audit.model import BreakerEvent, Declared, Finding, Journals
from automates.audit.rules import audit
from automates.audit.spend import spend_by_agent
from automates.guard.recording import store
from automates.registry.alert_kinds import AlertKind
from automates.registry.model import Kind
from automates.settings import Settings
from automates.states import FAILURE, SUCCESS, BreakerState
from automates.store import alerts, journals, spend
from automates.store.breakers import StoredBreaker, all_breakers
from automates.store.declared import declared_in
from automates.store.engine import transaction
from tasks.reporting import markdown_table, publish_markdown

# How far back the rules look: the drift's 7 days and the 28 before them.
LOOK_BACK = timedelta(days=RECENT_DAYS + BASELINE_DAYS)


@flow(name="journal-audit", log_prints=False)
def journal_audit() -> State:
    """Audit the journals, breakers and spend; publish the morning report; alert each finding."""
    settings = Settings()
    logger = get_run_logger()
    engine = store(settings.store_block)
    now = datetime.now(UTC)
    with transaction(engine) as connection:
        read = read_journals(connection, settings, now)
        breakers = all_breakers(connection)
    findings = audit(read, settings.audit)
    not_closed = [b for b in breakers if b.state is not BreakerState.CLOSED]
    summary = _summary(read, findings, not_closed, settings)
    publish_markdown(
        key="journal-audit",
        markdown=render(read, findings, not_closed, settings),
        description=summary,
    )
    data = {
        "findings": [
            {"rule": f.rule.value, "subject": f.subject, "message": f.message} for f in findings
        ]
    }
    if not findings:
        logger.info(summary)
        return Completed(message=summary, data=data)
    context = FlowRunContext.get()
    flow_run_id = context.flow_run.id if context and context.flow_run else None
    with transaction(engine) as connection:
        for finding in findings:
            raise_alert(connection, catalog.audit_finding(finding, flow_run_id))
    for finding in findings:
        logger.warning("%s: %s", finding.subject, finding.message)
    return Completed(name="Findings", message=summary, data=data)


def read_journals(connection: Connection, settings: Settings, now: datetime) -> Journals:
    """Every row the rules read, as of `now`."""
    flapping_since = now - timedelta(days=settings.audit.flapping_days)
    events = alerts.raised_since(
        connection, (AlertKind.BREAKER_OPENED, AlertKind.BREAKER_CLOSED), flapping_since
    )
    first_day = datetime.combine(now.date() - LOOK_BACK - timedelta(days=1), datetime.min.time())
    return Journals(
        now=now,
        runs=journals.runs_since(connection, now - LOOK_BACK),
        repairs=journals.repairs_since(
            connection, now - timedelta(days=settings.audit.repair_days)
        ),
        breaker_events=[
            BreakerEvent(e.automate, e.raised_at, e.kind is AlertKind.BREAKER_OPENED)
            for e in events
            if e.automate is not None
        ],
        declared=[
            Declared(
                automate=a.name,
                timeout_seconds=a.timeout_seconds,
                recurring=a.kind is Kind.RECURRING and a.enabled and bool(a.schedules),
            )
            for a in declared_in(connection, settings).deployable
        ],
        spend=spend.daily_spend(connection, first_day.replace(tzinfo=UTC)),
    )


def _summary(
    read: Journals, findings: list[Finding], not_closed: list[StoredBreaker], settings: Settings
) -> str:
    hours = settings.audit.recent_hours
    recent = [r for r in read.runs if r.finished_at > read.now - timedelta(hours=hours)]
    failed = sum(1 for r in recent if r.outcome in FAILURE)
    return (
        f"{len(findings)} finding(s); {len(recent)} run(s) in the last {hours} h, {failed} "
        f"failed; {len(not_closed)} breaker(s) not closed"
    )


def render(
    read: Journals, findings: list[Finding], not_closed: list[StoredBreaker], settings: Settings
) -> str:
    """The morning report: findings first, then the figures they were judged on."""
    parts = [
        f"# Journal audit, {read.now:%Y-%m-%d %H:%M} UTC",
        _summary(read, findings, not_closed, settings) + ".",
        "## Findings",
        markdown_table(
            ("rule", "about", "finding"),
            [(f.rule.value, f.subject, f.message) for f in findings],
        )
        if findings
        else "No findings.",
        f"## Runs (last {settings.audit.recent_hours} h; medians of successful runs)",
        _runs_table(read, settings),
        "## Breakers not closed",
        markdown_table(
            ("automate", "state", "consecutive failures", "opened"),
            [
                (b.automate, b.state.value, b.consecutive_failures, _when(b.opened_at))
                for b in not_closed
            ],
        )
        if not_closed
        else "Every breaker is closed.",
        "## Agents' spend (UTC days; task runs and LLM facade calls)",
        _spend_table(read),
    ]
    return "\n\n".join(parts) + "\n"


def _runs_table(read: Journals, settings: Settings) -> str:
    since = read.now - timedelta(hours=settings.audit.recent_hours)
    recent_from = read.now - timedelta(days=RECENT_DAYS)
    timeouts = {d.automate: d.timeout_seconds for d in read.declared}
    names = sorted({r.automate for r in read.runs if r.finished_at > since})
    rows = []
    for name in names:
        own = [r for r in read.runs if r.automate == name]
        recent = [r for r in own if r.finished_at > since]
        good_now = [
            r.duration_seconds for r in own if r.outcome in SUCCESS and r.finished_at > recent_from
        ]
        good_before = [
            r.duration_seconds for r in own if r.outcome in SUCCESS and r.finished_at <= recent_from
        ]
        rows.append(
            (
                name,
                len(recent),
                sum(1 for r in recent if r.outcome in FAILURE),
                _seconds(good_now),
                _seconds(good_before),
                timeouts.get(name, "-"),
            )
        )
    if not rows:
        return "No run journaled."
    headers = (
        "automate",
        "runs",
        "failed",
        f"median {RECENT_DAYS} d",
        f"median {BASELINE_DAYS} d before",
        "timeout s",
    )
    return markdown_table(headers, rows)


def _spend_table(read: Journals) -> str:
    rows = [
        (
            s.agent or "(platform)",
            f"${s.yesterday:.2f}",
            f"${s.recent_daily:.2f}",
            f"${s.baseline_daily:.2f}",
        )
        for s in spend_by_agent(read)
    ]
    if not rows:
        return "No spend."
    headers = (
        "agent",
        "yesterday",
        f"a day, last {RECENT_DAYS} d",
        f"a day, {BASELINE_DAYS} d before",
    )
    return markdown_table(headers, rows)


def _seconds(durations: list[float]) -> str:
    return f"{median(durations):.1f} s" if durations else "-"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "-"
