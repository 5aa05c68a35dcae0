"""The rolling per-agent budget: what counts, and two runs of one agent racing for the last
dollars under the advisory lock."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

from sqlalchemy import Engine, text

from automates.agents.taskruns import budget_refusal
from automates.settings import Settings
from automates.settings.groups import AgentSettings
from automates.store import taskruns as sql
from automates.store.engine import transaction
from tests.fixtures.stores import platform_store


def _task_run(engine: Engine, agent: str, status: str, **values: object) -> None:
    ended = "now() - interval '1 hour'" if status != "running" else "NULL"
    if values.pop("old", False):
        ended = "now() - interval '25 hours'"
    with transaction(engine) as connection:
        connection.execute(
            text(
                "INSERT INTO automates.task_runs (id, codename, agent, prompt, template, perimeter,"
                " timeout_seconds, status, attempts, cost_usd, max_budget_usd, ended_at) VALUES"
                f" (:id, 'c', :agent, 'p', 'research', 'platform', 60, :status, 1, :cost, :budget,"
                f" {ended})"
            ),
            {"id": uuid4(), "agent": agent, "status": status, **values},
        )


def test_spent_and_reserved_dollars_count_within_24_hours(
    scratch_database: str, tmp_path: Path
) -> None:
    engine = platform_store(scratch_database, tmp_path)
    settings = Settings(agent=AgentSettings(daily_budget_usd=20, budgets_usd={"oracle": 100}))
    _task_run(engine, "scout", "completed", cost=12, budget=None)
    _task_run(engine, "scout", "failed", cost=3, budget=5)
    _task_run(engine, "scout", "running", cost=0, budget=Decimal("2.5"))  # reserved
    _task_run(engine, "scout", "completed", cost=50, budget=None, old=True)  # out of the window
    _task_run(engine, "oracle", "completed", cost=50, budget=None)  # another agent
    with transaction(engine) as connection:
        assert budget_refusal(connection, "scout", Decimal("2.5"), settings) is None  # 20.0
        refusal = budget_refusal(connection, "scout", Decimal("2.51"), settings)
        assert refusal is not None and "$17.5000 spent or reserved" in refusal
        assert "$20.00 budget" in refusal
        assert budget_refusal(connection, "oracle", Decimal("50"), settings) is None
        assert budget_refusal(connection, "oracle", Decimal("50.01"), settings) is not None
    engine.dispose()


def test_two_runs_of_one_agent_cannot_both_take_the_last_dollars(
    scratch_database: str, tmp_path: Path
) -> None:
    engine = platform_store(scratch_database, tmp_path)
    settings = Settings(agent=AgentSettings(daily_budget_usd=20))
    _task_run(engine, "scout", "completed", cost=16, budget=None)
    both_checked = threading.Barrier(2, timeout=10)
    outcomes: list[str | None] = []

    def claim() -> None:
        task_run_id = uuid4()
        with transaction(engine) as connection:
            connection.execute(
                text(
                    "INSERT INTO automates.task_runs (id, codename, agent, prompt, template,"
                    " perimeter, timeout_seconds) VALUES"
                    " (:id, 'c', 'scout', 'p', 'research', 'platform', 60)"
                ),
                {"id": task_run_id},
            )
        both_checked.wait()  # both requests arrive together
        with transaction(engine) as connection:
            refusal = budget_refusal(connection, "scout", Decimal(3), settings)
            if refusal is None:  # reserve, as the claim does, before the lock is released
                sql.update_task_run(
                    connection, task_run_id, status="running", max_budget_usd=Decimal(3)
                )
            outcomes.append(refusal)

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o is None for o in outcomes) == [False, True]  # one ran, one was refused
    engine.dispose()
