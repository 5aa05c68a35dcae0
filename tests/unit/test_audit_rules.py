"""The journal audit's rules over synthetic journals: each case a few rows around one rule's
threshold, and the findings (rule, subject) expected of the whole audit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from automates.audit.model import (
    BreakerEvent,
    DaySpend,
    Declared,
    Journals,
    Repair,
    Rule,
    Run,
)
from automates.audit.repairs import fix_kind
from automates.audit.rules import audit
from automates.audit.spend import spend_by_agent
from automates.settings.groups import AuditSettings
from automates.states import RunOutcome

NOW = datetime(2026, 12, 10, 5, 30, tzinfo=UTC)
TODAY = NOW.date()


def hours_ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def run(automate: str, hours: float, outcome: str = "completed", seconds: float = 10.0) -> Run:
    return Run(automate, hours_ago(hours), seconds, RunOutcome(outcome))


def repair(automate: str, hours: float, fix: str) -> Repair:
    return Repair(automate, hours_ago(hours), fix)


def breaker(automate: str, hours: float, opened: bool = True) -> BreakerEvent:
    return BreakerEvent(automate, hours_ago(hours), opened)


def recurring(automate: str, timeout: int = 300, is_recurring: bool = True) -> Declared:
    return Declared(automate, timeout, is_recurring)


def spent(agent: str | None, days_ago: int, usd: str) -> DaySpend:
    return DaySpend(agent, TODAY - timedelta(days=days_ago), Decimal(usd))


def daily(agent: str | None, first: int, last: int, usd: str) -> list[DaySpend]:
    """The same spend on each day from `first` to `last` days ago."""
    return [spent(agent, n, usd) for n in range(first, last + 1)]


# A healthy recurring automate: it succeeds every few hours, always in about 10 s.
HEALTHY = [run("nightly", h) for h in range(2, 35 * 24, 12)]

CASES = [
    pytest.param({}, [], id="nothing-journaled"),
    pytest.param({"runs": HEALTHY, "declared": [recurring("nightly")]}, [], id="healthy"),
    # Failing repeatedly: failed, timed-out and crashed runs count; skipped ones do not.
    pytest.param(
        {
            "runs": [
                run("sync", 1, "failed"),
                run("sync", 5, "timed_out"),
                run("sync", 9, "crashed"),
            ]
        },
        [(Rule.REPEATED_FAILURES, "sync")],
        id="three-failures-in-a-day",
    ),
    pytest.param(
        {"runs": [run("sync", 1, "failed"), run("sync", 5, "failed"), run("sync", 9, "skipped")]},
        [],
        id="two-failures-and-a-skip",
    ),
    pytest.param(
        {"runs": [run("sync", 1, "failed"), run("sync", 5, "failed"), run("sync", 25, "failed")]},
        [],
        id="third-failure-before-the-window",
    ),
    # Not succeeding: a recurring automate's newest success is too old, or it never had one.
    pytest.param(
        {
            "runs": [run("export", 4 * 24 + 1), run("export", 2, "failed")],
            "declared": [recurring("export")],
        },
        [(Rule.NOT_SUCCEEDING, "export")],
        id="last-success-four-days-ago",
    ),
    pytest.param(
        {
            "runs": [run("export", 2 * 24), run("export", 2, "failed")],
            "declared": [recurring("export")],
        },
        [],
        id="last-success-two-days-ago",
    ),
    pytest.param(
        {
            "runs": [run("export", 5 * 24, "failed"), run("export", 3, "failed")],
            "declared": [recurring("export")],
        },
        [(Rule.NOT_SUCCEEDING, "export")],
        id="never-succeeded-in-five-days",
    ),
    pytest.param(
        {"runs": [run("export", 20, "failed")], "declared": [recurring("export")]},
        [],
        id="never-succeeded-but-new",
    ),
    pytest.param(
        {"runs": [run("tool", 5 * 24)], "declared": [recurring("tool", is_recurring=False)]},
        [],
        id="not-recurring",
    ),
    pytest.param({"declared": [recurring("export")]}, [], id="never-ran-left-to-the-dead-man"),
    # The same self-repair again and again (digits aside); different fixes are not a pattern.
    pytest.param(
        {
            "repairs": [
                repair("export", 1, "created missing directory /data/exports/2026-12-10"),
                repair("export", 25, "created missing directory /data/exports/2026-12-09"),
                repair("export", 49, "created missing directory /data/exports/2026-12-08"),
            ]
        },
        [(Rule.REPEATED_REPAIR, "export")],
        id="same-repair-three-nights",
    ),
    pytest.param(
        {
            "repairs": [
                repair("export", 1, "created missing directory /data/a"),
                repair("export", 2, "installed missing module 'yaml' with: uv pip install pyyaml"),
                repair("export", 3, "transient network error (ConnectionError): retried"),
            ]
        },
        [],
        id="three-different-repairs",
    ),
    pytest.param(
        {"repairs": [repair("export", h, "created missing directory /d") for h in (1, 2, 8 * 24)]},
        [],
        id="third-repair-before-the-window",
    ),
    # Flapping: opened three times in a week, closing in between.
    pytest.param(
        {
            "breaker_events": [
                breaker("probe-me", 100),
                breaker("probe-me", 90, opened=False),
                breaker("probe-me", 50),
                breaker("probe-me", 40, opened=False),
                breaker("probe-me", 10),
            ]
        },
        [(Rule.FLAPPING_BREAKER, "probe-me")],
        id="opened-three-times",
    ),
    pytest.param(
        {
            "breaker_events": [
                breaker("probe-me", 100),
                breaker("probe-me", 90, opened=False),
                breaker("probe-me", 10),
            ]
        },
        [],
        id="opened-twice",
    ),
    pytest.param(
        {"breaker_events": [breaker("probe-me", h) for h in (8 * 24, 9 * 24, 1)]},
        [],
        id="openings-before-the-window",
    ),
    # Durations: the last 7 days' median against the 28 days before.
    pytest.param(
        {
            "runs": [run("report", h * 24, seconds=10) for h in (10, 15, 20)]
            + [run("report", h * 24, seconds=25) for h in (1, 2, 3)]
        },
        [(Rule.DURATION_DRIFT, "report")],
        id="median-two-and-a-half-times",
    ),
    pytest.param(
        {
            "runs": [run("report", h * 24, seconds=10) for h in (10, 15, 20)]
            + [run("report", h * 24, seconds=15) for h in (1, 2, 3)]
        },
        [],
        id="median-one-and-a-half-times",
    ),
    pytest.param(
        {
            "runs": [run("report", h * 24, seconds=10) for h in (10, 15, 20)]
            + [run("report", h * 24, seconds=50) for h in (1, 2)]
            + [run("report", 3 * 24, "failed", seconds=50)]
        },
        [],
        id="too-few-successful-recent-runs",
    ),
    pytest.param(
        {
            "runs": [run("tick", h * 24, seconds=0.1) for h in (10, 15, 20)]
            + [run("tick", h * 24, seconds=0.5) for h in (1, 2, 3)]
        },
        [],
        id="fast-runs-are-no-drift",
    ),
    # Close to the timeout: a run that ran to its end after 80 % of it.
    pytest.param(
        {"runs": [run("slow", 2, seconds=85)], "declared": [recurring("slow", timeout=100)]},
        [(Rule.NEAR_TIMEOUT, "slow")],
        id="eighty-five-percent",
    ),
    pytest.param(
        {
            "runs": [run("slow", 2, "failed", seconds=90)],
            "declared": [recurring("slow", timeout=100, is_recurring=False)],
        },
        [(Rule.NEAR_TIMEOUT, "slow")],
        id="a-failed-run-close-to-its-timeout",
    ),
    pytest.param(
        {
            "runs": [
                run("slow", 2, seconds=75),
                run("slow", 30, seconds=99),
                run("slow", 3, "timed_out", seconds=100),
            ],
            "declared": [recurring("slow", timeout=100, is_recurring=False)],
        },
        [],
        id="seventy-five-percent-an-old-one-and-a-timeout",
    ),
    pytest.param({"runs": [run("gone", 2, seconds=999)]}, [], id="undeclared-automate"),
    # Spend: the last 7 whole days' daily average against the 28 days before.
    pytest.param(
        {"spend": daily("scout", 8, 35, "1.00") + daily("scout", 1, 7, "3.00")},
        [(Rule.SPEND_RISING, "agent scout")],
        id="spend-tripled",
    ),
    pytest.param(
        {"spend": daily("scout", 8, 35, "1.00") + daily("scout", 1, 7, "1.50")},
        [],
        id="spend-up-by-half",
    ),
    pytest.param(
        {"spend": daily("oracle", 1, 2, "1.00")},
        [(Rule.SPEND_RISING, "agent oracle")],
        id="new-spender",
    ),
    pytest.param({"spend": daily("oracle", 1, 2, "0.40")}, [], id="new-spender-under-the-minimum"),
    pytest.param(
        {"spend": [*daily(None, 8, 35, "0.10"), spent(None, 0, "50")]},
        [],
        id="today-is-not-over",
    ),
]


@pytest.mark.parametrize(("rows", "expected"), CASES)
def test_audit_rules(rows: dict[str, list[object]], expected: list[tuple[Rule, str]]) -> None:
    journals = Journals(now=NOW, **rows)  # type: ignore[arg-type]
    findings = audit(journals, AuditSettings())
    assert [(f.rule, f.subject) for f in findings] == expected
    for finding in findings:
        assert finding.message and "\n" not in finding.message


def test_findings_say_what_and_how_much() -> None:
    journals = Journals(
        now=NOW,
        runs=[
            run("sync", 1, "failed"),
            run("sync", 2, "failed"),
            run("sync", 3, "timed_out"),
            run("slow", 2, seconds=85),
        ],
        declared=[recurring("slow", timeout=100, is_recurring=False)],
        repairs=[repair("export", h, f"created missing directory /x/{h}") for h in (1, 2, 3)],
        spend=daily("scout", 8, 35, "1.00") + daily("scout", 1, 7, "3.00"),
    )
    messages = {f.rule: f.message for f in audit(journals, AuditSettings())}
    assert messages[Rule.REPEATED_FAILURES] == (
        "3 runs failed in the last 24 h (2 failed, 1 timed_out)"
    )
    assert messages[Rule.NEAR_TIMEOUT] == (
        "1 run(s) in the last 24 h ended after 80% or more of its 100 s timeout (the longest 85 s)"
    )
    assert messages[Rule.REPEATED_REPAIR].endswith("created missing directory /x/1")
    assert messages[Rule.SPEND_RISING] == (
        "spent $3.00 a day over the last 7 days, against $1.00 a day over the 28 days before"
    )


def test_thresholds_are_settings() -> None:
    journals = Journals(now=NOW, runs=[run("sync", 1, "failed"), run("sync", 30, "failed")])
    assert audit(journals, AuditSettings()) == []
    lenient = AuditSettings(failures=2, recent_hours=48)
    assert [f.rule for f in audit(journals, lenient)] == [Rule.REPEATED_FAILURES]


def test_spend_by_agent_sums_whole_days() -> None:
    rows = daily("scout", 8, 35, "1.00") + daily("scout", 1, 7, "2.00") + [spent("scout", 0, "9")]
    [scout] = spend_by_agent(Journals(now=NOW, spend=rows))
    assert (scout.yesterday, scout.recent, scout.baseline) == (
        Decimal("2.00"),
        Decimal("14.00"),
        Decimal("28.00"),
    )
    assert scout.recent_daily == Decimal(2) and scout.baseline_daily == Decimal(1)


def test_a_fix_differs_from_another_by_more_than_its_digits() -> None:
    assert fix_kind("created missing directory /e/2026-12-10") == fix_kind(
        "created missing directory /e/2026-12-09"
    )
    assert fix_kind("created missing directory /e/a") != fix_kind("created missing directory /e/b")
    assert date(2026, 12, 10) == TODAY
