"""Agents' routines through the layer's MCP server, as an agent reaches it: the SDK's client
over stdio, `python -m automates.mcp --agent NAME` as the LLM CLI starts it, against a real
Prefect server, store and worker."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from prefect.client.schemas.objects import FlowRun

from automates.server.client import prefect_client
from automates.settings import Settings
from automates.settings.groups import AgentSettings
from tests.conftest import REPO
from tests.fixtures.commands import invoke_json
from tests.fixtures.layer_tools import LAYER_TOOLS
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import cli_env, final_run, runs_of, store_rows, wait_for
from tests.fixtures.shipped_runs import met_another_run

DIGEST = {
    "name": "morning-digest",
    "description": "Summarise the night's alerts.",
    "schedule": {"cron": "0 9 * * *", "timezone": "Europe/Paris"},
    "prompt": "Summarise the alerts raised since yesterday 18:00.",
}


class Session:
    """One agent's MCP client session."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, arguments)
        assert not result.is_error, f"{tool}: {result.content}"
        assert result.structured_content is not None
        return dict(result.structured_content)

    async def refused(self, tool: str, **arguments: Any) -> str:
        result = await self.client.call_tool(tool, arguments)
        assert result.is_error, f"{tool} was not refused: {result.structured_content}"
        return " ".join(getattr(part, "text", "") for part in result.content)


def tool_env(settings: Settings, **variables: str) -> dict[str, str]:
    return {**cli_env(settings), **variables}


@asynccontextmanager
async def agent_session(agent: str, env: dict[str, str]) -> AsyncIterator[Session]:
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "automates.mcp", "--agent", agent], env=env
    )
    async with Client(server) as client:
        yield Session(client)


def routines_project(project: Project, server: Settings, pool: str, **agent: Any) -> Settings:
    """The operator's automates (one lists scout, one atlas), and the prompt routines' flow
    in the checkout, synced."""
    (project.root / "flows" / "agent_task_run.py").write_text(
        (REPO / "flows" / "agent_task_run.py").read_text()
    )
    ops = automate("ops-report", kind="oneshot", schedules=[], agents=["scout"])
    payroll = automate("payroll", kind="oneshot", schedules=[], agents=["atlas"])
    return project.declare_and_sync(
        server, ops, payroll, work_pool=pool, agent=AgentSettings(**agent)
    )


def stored_spec(settings: Settings, name: str) -> Any:
    rows = store_rows(settings, "SELECT spec FROM automates.agent_routines WHERE name = :n", n=name)
    return rows[0]["spec"] if rows else None


async def aschedules_active(settings: Settings, full_name: str) -> list[bool]:
    async with prefect_client(settings.api_url) as client:
        deployment = await client.read_deployment_by_name(full_name)
        return [schedule.active for schedule in deployment.schedules]


def schedules_active(settings: Settings, full_name: str) -> list[bool]:
    return asyncio.run(aschedules_active(settings, full_name))


def deployment_tags(settings: Settings, full_name: str) -> set[str]:
    async def read() -> set[str]:
        async with prefect_client(settings.api_url) as client:
            return set((await client.read_deployment_by_name(full_name)).tags)

    return asyncio.run(read())


def test_an_agent_sees_and_changes_only_its_own_routines(
    server: Settings, project: Project, worker: str
) -> None:
    settings = routines_project(project, server, worker)
    env = tool_env(settings)
    full_name = "agent-task-run/morning-digest"

    async def as_scout() -> None:
        async with agent_session("scout", env) as scout:
            assert {tool.name for tool in (await scout.client.list_tools()).tools} == LAYER_TOOLS

            # Below the minimum interval: refused with the reason, nothing stored.
            every_minute = {**DIGEST, "schedule": {"every": "1m"}}
            reason = await scout.refused("create_routine", routine=every_minute)
            assert "schedule.every" in reason and "at most every 5m" in reason
            assert stored_spec(settings, "morning-digest") is None

            made = await scout.call("create_routine", routine=DIGEST)
            assert made["change"] == "created" and made["deployment"] == full_name
            assert made["waiting_for_approval"] is True and made["active"] is False
            listed = await scout.call("list_routines")
            assert [(r["name"], r["yours"]) for r in listed["routines"]] == [
                ("morning-digest", True),
                ("ops-report", False),
            ]
            shown = await scout.call("show_routine", name="morning-digest")
            assert shown["spec"]["prompt"] == DIGEST["prompt"]
            ticks = (await scout.call("preview_routine", name="morning-digest", count=3))["ticks"]
            assert len(ticks) == 3
            assert all("T09:00:00+01:00" in tick["local"] for tick in ticks), ticks
            # No heartbeat configured for scout: none, not an error.
            assert await scout.call("heartbeat_status") == {"heartbeats": []}
            waiting = await scout.call("waiting_for_operator")
            assert [a["routine"] for a in waiting["approvals"]] == ["morning-digest"]
            assert "automates approve morning-digest" in waiting["approvals"][0]["how"]

            # Hostile or malformed: refused, naming the field; nothing changed.
            refusals = {
                "name": await scout.refused(
                    "create_routine", routine={**DIGEST, "name": "../../etc/passwd"}
                ),
                "template": await scout.refused(
                    "create_routine", routine={**DIGEST, "name": "coder", "template": "code"}
                ),
                "entrypoint": await scout.refused(
                    "create_routine",
                    routine={
                        **DIGEST,
                        "name": "payroll-run",
                        "prompt": None,
                        "entrypoint": "flows/hello.py:hello",
                    },
                ),
                "taken": await scout.refused(
                    "create_routine", routine={**DIGEST, "name": "payroll"}
                ),
                "command": await scout.refused(
                    "update_routine", name="morning-digest", changes={"command": ["sh", "-c", "id"]}
                ),
                "prompt": await scout.refused(
                    "update_routine", name="morning-digest", changes={"prompt": "p" * 20_001}
                ),
                "operator's": await scout.refused("pause_routine", name="ops-report"),
                "invisible": await scout.refused("show_routine", name="payroll"),
                "size": await scout.refused(
                    "update_routine", name="morning-digest", changes={"x": "y" * 70_000}
                ),
                "unknown tool": await scout.refused("drop_all_tables"),
            }
            assert "slug" in refusals["name"]
            assert "AUTOMATES_AGENT_ROUTINE_TEMPLATES" in refusals["template"]
            assert "AUTOMATES_AGENT_ROUTINE_ENTRYPOINTS" in refusals["entrypoint"]
            assert "taken" in refusals["taken"]
            assert "command" in refusals["command"]
            assert "prompt" in refusals["prompt"]
            assert "never change" in refusals["operator's"]
            assert "no routine named 'payroll' is visible" in refusals["invisible"]
            assert "at most 65536" in refusals["size"]
            assert stored_spec(settings, "morning-digest")["prompt"] == DIGEST["prompt"]
            assert stored_spec(settings, "coder") is None

        # Another agent: the routine is invisible and untouchable.
        async with agent_session("atlas", env) as atlas:
            listed = await atlas.call("list_routines")
            assert [r["name"] for r in listed["routines"]] == ["payroll"]
            for tool in ("show_routine", "pause_routine", "delete_routine", "run_routine"):
                refused = await atlas.refused(tool, name="morning-digest")
                assert "no routine named 'morning-digest' is visible to agent 'atlas'" in refused

    asyncio.run(as_scout())
    assert stored_spec(settings, "morning-digest") is not None
    assert {"origin:agent", "agent:scout"} <= deployment_tags(settings, full_name)
    assert schedules_active(settings, full_name) == [False]  # waits for approval

    # The operator approves it as any declaration; the agent pauses and resumes it.
    approved = invoke_json(project.env(**env), "approve", "morning-digest", "--by", "alice")
    assert approved["automate"] == "morning-digest"
    assert schedules_active(settings, full_name) == [True]
    listed = invoke_json(project.env(**env), "list")
    assert "morning-digest" in {row["name"] for row in listed}

    async def pause_and_delete() -> None:
        async with agent_session("scout", env) as scout:
            paused = await scout.call("pause_routine", name="morning-digest")
            assert (paused["enabled"], paused["active"]) == (False, False)
            assert await aschedules_active(settings, full_name) == [False]
            resumed = await scout.call("resume_routine", name="morning-digest")
            assert (resumed["enabled"], resumed["active"]) == (True, True)  # approved version
            assert await aschedules_active(settings, full_name) == [True]
            gone = await scout.call("delete_routine", name="morning-digest")
            assert gone["deployment_deleted"] is True

    asyncio.run(pause_and_delete())
    assert stored_spec(settings, "morning-digest") is None
    calls = store_rows(
        settings,
        "SELECT agent, tool, outcome, arguments FROM automates.agent_tool_calls "
        "WHERE agent IN ('scout', 'atlas') ORDER BY id",
    )
    scout_calls = [(c["tool"], c["outcome"]) for c in calls if c["agent"] == "scout"]
    assert scout_calls[:3] == [
        ("create_routine", "refused"),
        ("create_routine", "ok"),
        ("list_routines", "ok"),
    ]
    assert scout_calls[-3:] == [
        ("pause_routine", "ok"),
        ("resume_routine", "ok"),
        ("delete_routine", "ok"),
    ]
    assert sum(outcome == "refused" for _, outcome in scout_calls) == 11
    assert [c["outcome"] for c in calls if c["agent"] == "atlas"] == ["ok"] + ["refused"] * 4
    oversized = next(c for c in calls if c["tool"] == "update_routine" and "keys" in c["arguments"])
    assert oversized["arguments"] == {"keys": ["changes", "name"]}
    assert len(json.dumps([c["arguments"] for c in calls])) < 20_000  # cut, not kept whole


def test_an_approved_routine_fires_on_schedule_and_runs_on_request(
    server: Settings, project: Project, worker: str
) -> None:
    settings = routines_project(
        project,
        server,
        worker,
        min_interval_seconds=60,
        routine_entrypoints=("flows/hello.py:hello",),
    )
    env = tool_env(
        settings,
        AUTOMATES_AGENT_MIN_INTERVAL_SECONDS="60",
        AUTOMATES_AGENT_ROUTINE_ENTRYPOINTS='["flows/hello.py:hello"]',
    )
    routine = {
        "name": "minutely-hello",
        "description": "Says hello every minute.",
        "schedule": {"cron": "* * * * *"},
        "entrypoint": "flows/hello.py:hello",
    }

    async def create() -> None:
        async with agent_session("scout", env) as scout:
            made = await scout.call("create_routine", routine=routine)
            assert made["waiting_for_approval"] is True
            refused = await scout.refused("run_routine", name="minutely-hello")
            assert "waits for the operator's approval" in refused

    asyncio.run(create())
    full_name = "hello/minutely-hello"
    assert runs_of(settings, full_name) == []  # nothing fires before approval
    invoke_json(project.env(**env), "approve", "minutely-hello")

    def fired() -> FlowRun | None:
        done = [run for run in runs_of(settings, full_name) if run.state and run.state.is_final()]
        return done[0] if done else None

    scheduled = wait_for(fired, 150, "the routine's first scheduled run to end")
    assert scheduled.state_name == "Completed"

    async def run_now() -> str:
        async with agent_session("scout", env) as scout:
            started = await scout.call("run_routine", name="minutely-hello")
            assert "principal:agent:scout" in started["tags"]
            return str(started["flow_run_id"])

    # Routines run under `forbid`: a request that starts while the next tick's run is active
    # is Skipped, as it should be, and is asked for again.
    for _ in range(3):
        run_id = asyncio.run(run_now())
        ran = wait_for(partial(final_run, settings, run_id), 90, "the requested run to end")
        if not met_another_run(ran.state):
            break
    assert ran.state_name == "Completed", ran.state

    async def runs() -> list[dict[str, Any]]:
        async with agent_session("scout", env) as scout:
            return list((await scout.call("routine_runs", name="minutely-hello"))["runs"])

    async def delete() -> None:  # it fires every minute: gone before the next test
        async with agent_session("scout", env) as scout:
            assert (await scout.call("delete_routine", name="minutely-hello"))["deleted"]

    # A run's journal row is written by its hooks after its final state reaches the server; a
    # later tick's run may be journaled first: the wait is for these two runs' rows.
    both = {str(scheduled.id), run_id}

    def journaled_both() -> list[dict[str, Any]] | None:
        found = asyncio.run(runs())
        return found if both <= {str(run["flow_run_id"]) for run in found} else None

    found = wait_for(journaled_both, 60, "both runs in the execution journal")
    # Only these two: a tick's run that met the requested one is journaled as skipped.
    journaled = [run for run in found if str(run["flow_run_id"]) in both]
    assert {run["outcome"] for run in journaled} == {"completed"}
    assert {run["principal"] for run in journaled} == {"system", "agent:scout"}  # who asked
    assert "context" not in journaled[0] and "errors" not in journaled[0]  # what, not how
    asyncio.run(delete())
    assert stored_spec(settings, "minutely-hello") is None
