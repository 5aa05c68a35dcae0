"""The nightly journal audit end to end: journal rows seeded in the real store, the
`journal-audit` deployment run by a real worker under the guard, its findings in the run's
state, in the morning report (the artifact) and in the outbox, delivered by the real deliverer
to a local HTTP receiver."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import yaml
from sqlalchemy import Connection, Engine, text

from automates.settings import Settings
from automates.store.engine import make_engine, transaction
from automates.sync import sync
from tests.conftest import REPO
from tests.fixtures.deliverer import routed_to
from tests.fixtures.receivers import HttpSink
from tests.fixtures.servers import layer_settings, store_rows, wait_for
from tests.fixtures.shipped_runs import artifact, run


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def journaled(
    connection: Connection, automate: str, finished: datetime, outcome: str, seconds: float = 10
) -> None:
    connection.execute(
        text(
            "INSERT INTO automates.execution_journal (automate, flow_run_id, started_at,"
            " finished_at, duration_seconds, outcome, attempts) VALUES (:automate, :id,"
            " :started, :finished, :seconds, :outcome, 1)"
        ),
        {
            "automate": automate,
            "id": uuid4(),
            "started": finished - timedelta(seconds=seconds),
            "finished": finished,
            "seconds": seconds,
            "outcome": outcome,
        },
    )


def repaired(connection: Connection, automate: str, at: datetime, fix: str) -> None:
    connection.execute(
        text(
            "INSERT INTO automates.crash_journal (automate, flow_run_id, attempt, occurred_at,"
            " error_class, message, traceback, fix_applied, retry_outcome) VALUES (:automate,"
            " :id, 1, :at, 'FileNotFoundError', 'no such folder', '', :fix, 'succeeded')"
        ),
        {"automate": automate, "id": uuid4(), "at": at, "fix": fix},
    )


def breaker_alert(connection: Connection, automate: str, at: datetime, kind: str) -> None:
    """A breaker's opening or closing as the guard writes it, already routed (so no deliverer
    of this session sends it): the audit reads when each was raised."""
    connection.execute(
        text(
            "INSERT INTO automates.alerts (raised_at, kind, automate, signature, condition, title,"
            " body, routed_at) VALUES (:at, :kind, :automate, :kind, :condition, :kind, :kind,"
            " :at)"
        ),
        {"at": at, "kind": kind, "automate": automate, "condition": f"breaker_opened:{automate}"},
    )


def spent(connection: Connection, agent: str, ended: datetime, cost: str) -> None:
    connection.execute(
        text(
            "INSERT INTO automates.task_runs (id, codename, agent, prompt, template, perimeter,"
            " timeout_seconds, status, attempts, cost_usd, ended_at) VALUES (:id, 'seeded',"
            " :agent, 'p', 'research', 'platform', 60, 'completed', 1, :cost, :ended)"
        ),
        {"id": uuid4(), "agent": agent, "cost": cost, "ended": ended},
    )


def seed(engine: Engine, tag: str) -> dict[str, str]:
    """One automate (or agent) per rule, named with `tag`; two shipped automates for the rules
    that read the declarations. The subject each finding must name, by rule."""
    subjects = {
        "repeated_failures": f"flaky-{tag}",
        "repeated_repair": f"mender-{tag}",
        "flapping_breaker": f"flapper-{tag}",
        "duration_drift": f"slower-{tag}",
        "near_timeout": "flow-run-retention",  # declared timeout 1800 s
        "not_succeeding": "registry-report",  # recurring, a weekday-morning schedule
        "spend_rising": f"agent spender-{tag}",
    }
    with transaction(engine) as connection:
        for hours in (1, 3, 5):
            journaled(connection, subjects["repeated_failures"], ago(hours=hours), "failed")
        for days in (1, 2, 3):
            fix = f"created missing directory /data/exports/2026-12-0{days}"
            repaired(connection, subjects["repeated_repair"], ago(days=days), fix)
        for hours, kind in ((100, "opened"), (90, "closed"), (60, "opened"), (50, "closed")):
            breaker_alert(
                connection, subjects["flapping_breaker"], ago(hours=hours), f"breaker_{kind}"
            )
        breaker_alert(connection, subjects["flapping_breaker"], ago(hours=2), "breaker_opened")
        for days in (10, 15, 20):
            journaled(connection, subjects["duration_drift"], ago(days=days), "completed", 10)
        for days in (1, 2, 3):
            journaled(connection, subjects["duration_drift"], ago(days=days), "completed", 30)
        journaled(connection, "flow-run-retention", ago(hours=2), "completed", 1500)
        journaled(connection, "registry-report", ago(days=5), "failed")
        journaled(connection, "registry-report", ago(hours=3), "failed")
        spent(connection, f"spender-{tag}", ago(days=2), "5")
    return subjects


# The audit and the two shipped automates whose declarations two rules read: deployed from a
# registry of their own, so what else the shipped registry holds does not matter here.
AUDITED = ("journal-audit", "registry-report", "flow-run-retention")


def shipped_subset(folder: Path, names: tuple[str, ...]) -> Path:
    """A registry file holding only the shipped declarations `names`."""
    shipped = yaml.safe_load((REPO / "deployments" / "registry.yaml").read_text())
    kept = [a for a in shipped["automates"] if a["name"] in names]
    assert {a["name"] for a in kept} == set(names)
    path = folder / "registry.yaml"
    path.write_text(yaml.safe_dump({"automates": kept}, sort_keys=False))
    return path


def test_the_audit_reports_its_findings_and_alerts_each_one(
    server: Settings,
    repo_worker: str,
    http_sink: HttpSink,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    settings = layer_settings(
        server,
        project_root=REPO,
        work_pool=repo_worker,
        registry_file=shipped_subset(tmp_path, AUDITED),
    )
    asyncio.run(sync(settings, settings.database_url or ""))
    engine = make_engine(settings.database_url or "")
    tag = os.urandom(3).hex()
    subjects = seed(engine, tag)
    engine.dispose()

    with routed_to(settings, http_sink, monkeypatch, "audit"):
        flow_run, _ = run(settings, "journal-audit/journal-audit")  # asked again if Skipped
        assert flow_run.state is not None and flow_run.state.is_completed(), flow_run.state
        assert flow_run.state_name == "Findings"
        message = flow_run.state.message or ""
        assert "finding(s);" in message and "breaker(s) not closed" in message

        report = artifact(settings, "journal-audit", flow_run)
        assert report.startswith("# Journal audit, ")
        for rule, subject in subjects.items():
            assert f"| {rule} | {subject} |" in report, (rule, report)
        assert f"| spender-{tag} | $0.00 | $0.71 | $0.00 |" in report  # $5 over 7 days

        raised = audit_alerts(settings, flow_run.id)
        found = {
            (a["facts"]["rule"], a["automate"] or f"agent {a['facts']['agent']}") for a in raised
        }
        assert set(subjects.items()) <= found
        mender = next(a for a in raised if a["automate"] == f"mender-{tag}")
        assert mender["title"] == f"journal audit: mender-{tag}: repeated repair"
        assert mender["body"].startswith(
            f"mender-{tag}: self-repair applied 3 times in 7 days, the cause never fixed: "
            "created missing directory /data/exports/2026-12-01"
        )
        # Every finding about the seeded subjects reaches the receiver, once.
        ours = wait_for(
            lambda: (
                tagged
                if len(tagged := [r for r in http_sink.requests if tag in r.json()["message"]]) >= 5
                else None
            ),
            60,
            "the tagged findings at the receiver",
        )
    titles = sorted(r.json()["title"].removeprefix("[automates] ") for r in ours)
    assert titles == sorted(
        f"journal audit: {subject}: {rule.replace('_', ' ')}"
        for rule, subject in subjects.items()
        if tag in subject
    )


def audit_alerts(settings: Settings, flow_run_id: Any) -> list[dict[str, Any]]:
    return store_rows(
        settings,
        "SELECT automate, title, body, facts FROM automates.alerts"
        " WHERE kind = 'audit_finding' AND flow_run_id = :id ORDER BY id",
        id=flow_run_id,
    )
