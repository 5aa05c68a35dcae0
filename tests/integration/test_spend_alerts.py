"""Cost and runaway alerts end to end: task runs on the real agent dispatcher, the LLM CLI being
the fake CLI, refused over budget or killed at their cost or time bound, and the day's spend
passing its thresholds; each alert delivered by the real deliverer to a local HTTP receiver."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from automates.settings import Settings
from tests.fixtures.deliverer import alert_deliveries, routed_to
from tests.fixtures.receivers import HttpSink, ReceivedRequest
from tests.fixtures.servers import store_rows, wait_for
from tests.fixtures.task_runs import fake_cli, spent_today, start


def received(sink: HttpSink, needle: str, count: int) -> list[ReceivedRequest]:
    """The first `count` messages holding `needle` at the receiver, once they are in (other
    tests' alerts left in the session's outbox may arrive too)."""
    return wait_for(
        lambda: (
            ours
            if len(ours := [r for r in sink.requests if needle in r.json()["message"]]) >= count
            else None
        ),
        60,
        f"{count} alert(s) saying {needle!r} at the receiver",
    )


def test_over_budget_refusals_and_runaway_kills_reach_the_routes(
    layer: Settings, tmp_path: Path, http_sink: HttpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = f"spender-{os.urandom(3).hex()}"
    with routed_to(layer, http_sink, monkeypatch, "spend"):
        # Refused before start: $19.50 of the agent's $20 are spent today.
        spent_today(layer, agent, Decimal("19.5"))
        fake_cli(layer, tmp_path, "success")
        assert start(layer, agent=agent, codename="refused")["status"] == "over_budget"
        # Killed at its running cost, and at its time bound (another agent, with budget left).
        runner = f"{agent}-b"
        fake_cli(layer, tmp_path, "runaway")
        assert start(layer, agent=runner, codename="costly", budget="0.5")["status"] == (
            "over_budget"
        )
        fake_cli(layer, tmp_path, "hang")
        assert start(layer, agent=runner, codename="slow", timeout="3")["status"] == "timed_out"
        [refusal] = received(http_sink, f"refused of agent {agent} ", 1)
        kills = received(http_sink, f"of agent {runner} killed", 2)
    assert "refused before start" in refusal.json()["message"]
    assert "$20.00 budget" in refusal.json()["message"]
    messages = sorted(r.json()["message"] for r in kills)
    assert "Task run costly of agent" in messages[0] and "over the $0.5 budget" in messages[0]
    assert "Task run slow of agent" in messages[1] and "timed out after 3 s" in messages[1]
    assert [(a["kind"], a["status"]) for a in alert_deliveries(layer, agent=runner)] == [
        ("task_run_killed", "sent"),
        ("task_run_killed", "sent"),
    ]


def test_the_days_thresholds_alert_once_per_agent_and_level(
    layer: Settings, tmp_path: Path, http_sink: HttpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = f"payer-{os.urandom(3).hex()}"
    fake_cli(layer, tmp_path, "success")  # each run costs about 2 cents
    with routed_to(layer, http_sink, monkeypatch, "spend"):
        spent_today(layer, agent, Decimal("9.99"))
        for codename in ("first", "second"):  # past $10, then still past: one warning
            assert start(layer, agent=agent, codename=codename)["status"] == "completed"
        # Half a run under the critical $18, the next run's $2 budget still fitting in the $20.
        [(total, each)] = [
            (r["total"], r["each"])
            for r in store_rows(
                layer,
                "SELECT sum(cost_usd) AS total, max(cost_usd) FILTER (WHERE codename = 'first')"
                " AS each FROM automates.task_runs WHERE agent = :agent",
                agent=agent,
            )
        ]
        spent_today(layer, agent, Decimal(18) - total - each / 2)
        assert start(layer, agent=agent, codename="third")["status"] == "completed"
        warning, critical = received(http_sink, f"{agent} spent $", 2)
    assert "over its warning threshold of $10.00" in warning.json()["title"]
    assert "over its critical threshold of $18.00" in critical.json()["title"]
    delivered = alert_deliveries(layer, agent=agent)
    assert [(a["kind"], a["facts"]["level"], a["status"]) for a in delivered] == [
        ("spend_warning", "warning", "sent"),
        ("spend_critical", "critical", "sent"),
    ]
