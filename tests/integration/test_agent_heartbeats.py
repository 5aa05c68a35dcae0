"""Agents' heartbeats end to end: configured with `automates heartbeat`, run by the real agent
dispatcher under the guard against the real server and store, the LLM CLI being the fake CLI;
the alert of a finding delivered by the real deliverer to a local HTTP receiver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.schemas.objects import FlowRun

from automates.scheduling.realise import INTERVAL_ANCHOR
from automates.settings import Settings
from tests.fixtures.commands import invoke
from tests.fixtures.deliverer import alert_deliveries, routed_to
from tests.fixtures.receivers import HttpSink
from tests.fixtures.servers import cli_env, cli_json, final_run, store_rows, wait_for
from tests.fixtures.task_runs import fake_cli

NAME = "heartbeat-atlas"
FINDING = "The nightly backup did not run: no dump since Tuesday."


def quiet_every(margin: timedelta = timedelta(hours=1)) -> str:
    """A whole-hours interval whose next tick is more than `margin` away. An interval ticks on
    multiples of itself from 2020-01-01 00:00 UTC (a heartbeat has no jitter): with the
    default 30m, a test crossing :00 or :30 would see a scheduled check-in beside its own."""
    now = datetime.now(UTC)
    anchor = INTERVAL_ANCHOR.replace(tzinfo=UTC)
    for hours in range(23, 1, -1):
        step = timedelta(hours=hours)
        if step - (now - anchor) % step > margin:
            return f"{hours}h"
    raise AssertionError("no interval of 2 to 23 hours is an hour from its next tick")


def check_in(layer: Settings) -> FlowRun:
    """`automates heartbeat run atlas`, and the run once it ended."""
    started = cli_json(cli_env(layer), "heartbeat", "run", "atlas", "--json")
    return wait_for(lambda: final_run(layer, started["flow_run_id"]), 120, "the check-in to end")


def task_runs_of(layer: Settings) -> list[dict[str, Any]]:
    return store_rows(
        layer, "SELECT status, prompt FROM automates.task_runs WHERE codename = :c", c=NAME
    )


def test_a_heartbeat_is_silent_when_acknowledged_and_alerts_once_on_a_finding(
    layer: Settings, tmp_path: Path, http_sink: HttpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = cli_env(layer)
    # An empty checklist: configured, but every check-in is skipped before any model call.
    every = quiet_every()  # no scheduled check-in during the test: only its own
    empty = "# Heartbeat\n- [ ]\n"
    configured = cli_json(
        env, "heartbeat", "enable", "atlas", "--checklist", empty, "--every", every, "--json"
    )
    [heartbeat] = configured["heartbeats"]
    assert (heartbeat["enabled"], heartbeat["every"], heartbeat["template"]) == (
        True,
        every,
        "heartbeat",
    )
    fake_cli(layer, tmp_path, "success", FAKE_CLAUDE_ANSWER="**HEARTBEAT_OK**")
    skipped = check_in(layer)
    assert skipped.state_name == "Skipped"
    assert "checklist is empty" in (skipped.state.message or "")  # type: ignore[union-attr]
    assert task_runs_of(layer) == []  # no model call

    cli_json(
        env, "heartbeat", "enable", "atlas", "--checklist", "- the backup ran tonight", "--json"
    )
    status = cli_json(env, "heartbeat", "status", "atlas", "--json")
    assert status["heartbeats"][0]["checklist"] == "- the backup ran tonight"

    with routed_to(layer, http_sink, monkeypatch, "heartbeat"):
        # All is well: acknowledged, nothing delivered, the check-in on record.
        acknowledged = check_in(layer)
        assert acknowledged.state_name == "Completed", acknowledged.state
        assert "acknowledged" in (acknowledged.state.message or "")  # type: ignore[union-attr]
        [task_run] = task_runs_of(layer)
        assert task_run["status"] == "completed"
        assert "- the backup ran tonight" in task_run["prompt"]

        # A finding: one alert delivered; the same finding again is suppressed.
        fake_cli(layer, tmp_path, "success", FAKE_CLAUDE_ANSWER=FINDING)
        for _ in range(2):
            found = check_in(layer)
            assert found.state_name == "Findings"
            assert found.state.message == FINDING  # type: ignore[union-attr]
        rows = wait_for(
            lambda: (
                rows
                if len(rows := alert_deliveries(layer, automate=NAME)) == 3
                and all(r["status"] not in ("pending", "sending") for r in rows)
                else None
            ),
            60,
            "the three check-ins' deliveries to settle",
        )
        # The receiver may also get alerts other tests left in the session's outbox.
        ours = wait_for(
            lambda: [r for r in http_sink.requests if NAME in r.json()["message"]] or None,
            30,
            "the finding at the receiver",
        )
    assert [(r["kind"], r["status"]) for r in rows] == [
        ("run_completed", "suppressed"),  # failure_only: an acknowledgement is not delivered
        ("run_findings", "sent"),
        ("run_findings", "suppressed"),
    ]
    assert rows[2]["reason"].startswith("duplicate of alert #")
    [received] = ours  # once: the duplicate was suppressed
    assert FINDING in received.json()["message"]
    assert [r["status"] for r in task_runs_of(layer)] == ["completed"] * 3

    # Disabled: the schedule paused, the configuration kept; a check-in now is skipped.
    disabled = cli_json(env, "heartbeat", "disable", "atlas", "--json")
    assert disabled["heartbeats"][0]["enabled"] is False
    assert "heartbeat is disabled" in (check_in(layer).state.message or "")  # type: ignore[union-attr]
    # Outside its active hours (a window two hours from now): skipped, saying so.
    later = datetime.now(UTC) + timedelta(hours=2)
    window = f"{later:%H}:00-{(later + timedelta(hours=1)):%H}:00"
    cli_json(env, "heartbeat", "enable", "atlas", "--active", window, "--timezone", "UTC", "--json")
    outside = check_in(layer)
    assert outside.state_name == "Skipped"
    assert f"outside its active hours ({window} UTC)" in (outside.state.message or "")  # type: ignore[union-attr]
    assert len(task_runs_of(layer)) == 3  # neither skipped check-in called the model


def test_heartbeat_settings_are_refused_whole(layer: Settings) -> None:
    env = cli_env(layer)
    for args, field in (
        (["--every", "10s", "--checklist", "x"], "every"),
        (["--checklist", "x", "--checklist-file", "HEARTBEAT.md"], "checklist"),
        (["--checklist-file", "no/such/HEARTBEAT.md"], "checklist_file"),
        (["--checklist", "x", "--active", "25:00-26:00"], "active_hours"),
    ):
        done = invoke(env, "heartbeat", "enable", "scout", *args, code=2)
        assert field in done.stderr, done.stderr
    assert cli_json(env, "heartbeat", "status", "--json") == {"heartbeats": []}
