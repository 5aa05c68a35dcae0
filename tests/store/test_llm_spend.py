"""The LLM facade's calls in their agent's rolling budget, on a real store: refused before the
call when the budget is spent (the model API is the one double: a local HTTP server speaking
the Messages API), settled at their real cost after, seen by the task runs' budget check, and
the day's spend thresholds alerted once per level."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import Engine, text

from automates.agents.llm import Llm
from automates.agents.llm_budget import LlmBudget, worst_case_usd
from automates.agents.taskruns import budget_refusal
from automates.errors import LlmError, LlmOverBudgetError
from automates.settings import Settings
from automates.settings.groups import AgentSettings, LlmSettings, SpendSettings
from automates.states import LlmCallStatus
from automates.store import spend
from automates.store import taskruns as sql
from automates.store.engine import transaction
from tests.fixtures.fake_claude.messages_api import FakeMessagesApi, failure
from tests.fixtures.fake_claude.messages_api import text as answer
from tests.fixtures.stores import platform_store


@pytest.fixture
def store(scratch_database: str, tmp_path: Path) -> Iterator[Engine]:
    engine = platform_store(scratch_database, tmp_path)
    yield engine
    engine.dispose()


def settings_for(api: FakeMessagesApi, **groups: Any) -> Settings:
    llm = LlmSettings(api_base_url=api.url, max_retries=0)
    return Settings(llm=llm, **groups)


def spent_task_run(engine: Engine, agent: str, cost: str) -> None:
    """A task run of `agent` that ended an hour ago, having cost `cost` dollars."""
    with transaction(engine) as connection:
        connection.execute(
            text(
                "INSERT INTO automates.task_runs (id, codename, agent, prompt, template, perimeter,"
                " timeout_seconds, status, attempts, cost_usd, ended_at) VALUES (:id, 'earlier',"
                " :agent, 'p', 'research', 'platform', 60, 'completed', 1, :cost,"
                " now() - interval '1 hour')"
            ),
            {"id": uuid4(), "agent": agent, "cost": Decimal(cost)},
        )


def alerts(engine: Engine, kind: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT title, body, facts FROM automates.alerts WHERE kind = :k ORDER BY id"),
            {"k": kind},
        )
        return [dict(row._mapping) for row in rows]


def test_a_call_past_the_agents_budget_is_refused_before_the_model_is_called(
    messages_api: FakeMessagesApi, store: Engine
) -> None:
    settings = settings_for(messages_api, agent=AgentSettings(daily_budget_usd=5))
    spent_task_run(store, "scout", "4.9999")
    llm = Llm(settings, LlmBudget(store, settings))
    with pytest.raises(LlmOverBudgetError, match=r"agent 'scout' has \$4\.9999 spent"):
        llm.generate("Summarise the incident.", agent="scout", max_tokens=1024)
    assert messages_api.requests == []  # never sent
    with transaction(store) as connection:
        assert spend.read_llm_calls(connection) == []  # nothing reserved
    [refused] = alerts(store, "llm_over_budget")
    assert refused["title"] == "LLM call of agent scout refused: over budget"
    assert "this call's worst case $" in refused["body"] and "$5.00 budget" in refused["body"]
    assert refused["facts"] == {"agent": "scout", "model": "claude-sonnet-4-6"}
    # Another agent's budget is its own; a call of no agent is the platform's, in no budget.
    messages_api.responder = lambda request: answer("fine", input_tokens=1000, output_tokens=100)
    assert llm.generate("Summarise.", agent="oracle").text == "fine"
    assert llm.generate("Summarise.").text == "fine"


def test_a_call_is_settled_at_its_cost_and_counts_for_the_task_runs(
    messages_api: FakeMessagesApi, store: Engine
) -> None:
    settings = settings_for(messages_api, agent=AgentSettings(daily_budget_usd=5))
    messages_api.responder = lambda request: answer(
        "ok", input_tokens=100_000, output_tokens=20_000
    )
    reply = Llm(settings, LlmBudget(store, settings)).generate("x" * 10, agent="scout")
    cost = Decimal("0.6")  # 100k in at $3/M, 20k out at $15/M (sonnet)
    assert reply.usage.cost_usd == pytest.approx(float(cost))
    with transaction(store) as connection:
        [call] = spend.read_llm_calls(connection, "scout")
        assert (call.status, call.cost_usd, call.input_tokens) == (
            LlmCallStatus.SPENT,
            cost,
            100_000,
        )
        assert call.reserved_usd == worst_case_usd("claude-sonnet-4-6", "x" * 10, None, 1024)
        assert call.ended_at is not None and call.agent == "scout"
        # A task run's $4.41 budget no longer fits: $0.60 of the $5 went to the facade.
        assert budget_refusal(connection, "scout", Decimal("4.40"), settings) is None
        refusal = budget_refusal(connection, "scout", Decimal("4.41"), settings)
        assert refusal is not None and "$0.6000 spent or reserved" in refusal


def test_a_reservation_holds_until_settled_and_a_refused_call_costs_nothing(
    messages_api: FakeMessagesApi, store: Engine
) -> None:
    settings = settings_for(messages_api, agent=AgentSettings(daily_budget_usd=5))
    budget = LlmBudget(store, settings)
    # A call whose process died mid-call: its worst case stays held.
    budget.reserve("scout", "claude-sonnet-4-6", Decimal("4.5"))
    with transaction(store) as connection:
        assert sql.committed_spend(connection, "scout", spend_now()) == Decimal("4.5")
    with pytest.raises(LlmOverBudgetError):
        Llm(settings, budget).generate("hello", agent="scout", max_tokens=40_000)  # +$0.60
    # The API refuses a call: the reservation is released, nothing spent.
    messages_api.queued.append(failure(529))
    with pytest.raises(LlmError, match="529"):
        Llm(settings, budget).generate("hello", agent="oracle")
    with transaction(store) as connection:
        [refused] = spend.read_llm_calls(connection, "oracle")
        assert (refused.status, refused.cost_usd) == (LlmCallStatus.FAILED, Decimal(0))
        assert sql.committed_spend(connection, "oracle", spend_now()) == Decimal(0)


def test_the_days_thresholds_alert_once_per_level(
    messages_api: FakeMessagesApi, store: Engine
) -> None:
    thresholds = SpendSettings(
        agent_warn_usd=1.0,
        agent_critical_usd=2.0,
        agents_usd={"oracle": {"warn": 50, "critical": 60}},  # type: ignore[dict-item]
        platform_warn_usd=2.5,
        platform_critical_usd=100,
    )
    settings = settings_for(messages_api, spend=thresholds)
    llm = Llm(settings, LlmBudget(store, settings))
    # $0.60 a call.
    messages_api.responder = lambda request: answer("ok", input_tokens=200_000, output_tokens=0)
    for _ in range(2):  # $1.20: past the warn threshold, once
        llm.generate("a", agent="scout")
    assert [a["facts"]["level"] for a in alerts(store, "spend_warning")] == ["warning"]
    [warning] = alerts(store, "spend_warning")
    assert warning["title"] == (
        "agent scout spent $1.20 today: over its warning threshold of $1.00"
    )
    assert warning["facts"]["agent"] == "scout" and warning["facts"]["spent_usd"] == "1.2000"
    llm.generate("a", agent="scout")  # $1.80: still past warn, no second alert
    assert len(alerts(store, "spend_warning")) == 1 and alerts(store, "spend_critical") == []
    llm.generate("a", agent="scout")  # $2.40: critical
    [critical] = alerts(store, "spend_critical")
    assert critical["facts"]["agent"] == "scout"
    # Another agent's own thresholds are far; the platform's $2.50 is crossed by it.
    llm.generate("a", agent="oracle")
    warnings = alerts(store, "spend_warning")
    assert [w["facts"]["agent"] for w in warnings] == ["scout", None]
    assert warnings[1]["title"].startswith("the platform spent $3.00 today")


def spend_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
