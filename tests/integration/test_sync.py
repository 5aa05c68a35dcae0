"""`sync` against a real Prefect server on PostgreSQL: what it writes, and what it does not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from automates.errors import DeclarationError
from automates.server.client import prefect_client
from automates.server.deployed import ServerState, read_server_state
from automates.settings import Settings
from automates.sync import sync
from blocks.store import connector_for
from tests.conftest import REPO, shipped_registry
from tests.fixtures.commands import run_module
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import cli_env, layer_settings, store_rows


def state(settings: Settings) -> ServerState:
    async def read() -> ServerState:
        async with prefect_client(settings.api_url) as client:
            return await read_server_state(client)

    return asyncio.run(read())


def registry_table(settings: Settings) -> list[dict[str, Any]]:
    return store_rows(
        settings,
        "SELECT a.name, a.kind, a.caste, a.work_pool, a.updated_at,"
        " array(SELECT agent FROM automates.automate_agents g WHERE g.automate = a.name"
        " ORDER BY agent) AS agents,"
        " array(SELECT slug || ' ' || cron || ' ' || timezone"
        " FROM automates.automate_schedules s"
        " WHERE s.automate = a.name ORDER BY slug) AS schedules"
        " FROM automates.automates a ORDER BY name",
    )


def pool_type(settings: Settings, pool: str) -> str:
    async def read() -> str:
        async with prefect_client(settings.api_url) as client:
            return (await client.read_work_pool(pool)).type

    return asyncio.run(read())


def test_sync_of_the_shipped_registry_reads_back_exactly(server: Settings) -> None:
    settings = layer_settings(server, project_root=REPO)
    report = asyncio.run(sync(settings, settings.database_url or ""))
    assert sorted(report.created) == [
        "agent-task-run/agent-task-run",
        "backup-verify/backup-verify",
        "backup/backup",
        "breaker-probe/breaker-probe",
        "browser-job-watch/browser-job-watch",
        "disk-space-check/disk-space-check",
        "flow-run-retention/flow-run-retention",
        "journal-audit/journal-audit",
        "missed-run-check/missed-run-check",
        "registry-reconcile/registry-reconcile",
        "registry-report/registry-report",
        "run-watch/run-watch",
        "scoped-run/scoped-run",
        "store-maintenance/store-maintenance",
        "store-retention/store-retention",
        "unblock-detector/unblock-detector",
    ]
    deployed = state(settings).deployments
    maintenance = deployed["store-maintenance/store-maintenance"].response
    schedules = {s.slug: s for s in maintenance.schedules}
    assert schedules["daily-light"].schedule.cron == "30 3 * * *"  # type: ignore[union-attr]
    assert schedules["daily-light"].schedule.timezone == "Asia/Makassar"  # type: ignore[union-attr]
    assert schedules["weekly-deep"].parameters == {"deep": True}
    assert all(s.active for s in maintenance.schedules)
    assert maintenance.work_pool_name == "test-local"
    assert maintenance.entrypoint == "flows/store_maintenance.py:store_maintenance"
    assert "caste:horlogers" in maintenance.tags and "family:maintenance" in maintenance.tags
    assert "kind:recurring" in maintenance.tags and "managed-by:automates" in maintenance.tags
    spec = deployed["store-maintenance/store-maintenance"].spec
    assert spec.concurrency_limit is None  # forbid: the guard's slot, no Prefect limit
    assert deployed["flow-run-retention/flow-run-retention"].response.parameters == {
        "keep_days": 30
    }
    rows = registry_table(settings)
    assert [r["name"] for r in rows] == [
        "agent-task-run",
        "backup",
        "backup-verify",
        "breaker-probe",
        "browser-job-watch",
        "disk-space-check",
        "flow-run-retention",
        "journal-audit",
        "missed-run-check",
        "registry-reconcile",
        "registry-report",
        "run-watch",
        "scoped-run",
        "store-block",
        "store-maintenance",
        "store-retention",
        "unblock-detector",
    ]
    store_block = next(r for r in rows if r["name"] == "store-block")
    assert store_block["kind"] == "lib"
    assert report.block_written
    # Agent task runs go to the agent pool, created with the dispatcher's worker type.
    agent = deployed["agent-task-run/agent-task-run"]
    assert agent.response.work_pool_name == "agents" and agent.spec.concurrency_limit is None
    assert pool_type(settings, "agents") == "automates-agents"
    assert sorted(report.agent_blocks_written) == [
        "llm-cli:default",
        "template:audit",
        "template:code",
        "template:heartbeat",
        "template:research",
        "template:routines",
    ]
    again = asyncio.run(sync(settings, settings.database_url or ""))
    assert again.agent_blocks_written == [] and again.server_writes == 0


def test_a_no_change_resync_writes_nothing(server: Settings, project: Project) -> None:
    project.declare(
        automate("nightly", concurrency="allow", concurrency_limit=3),
        automate(
            "twice",
            schedules=[
                {"slug": "light", "cron": "0 6 * * *", "timezone": "Europe/Paris"},
                {
                    "slug": "deep",
                    "cron": "0 2 * * 0",
                    "timezone": "Europe/Paris",
                    "parameters": {"greeting": "deep"},
                },
            ],
        ),
        automate(
            "by-hand", kind="oneshot", schedules=[], entrypoint="flows/goodbye.py:say_goodbye"
        ),
    )
    settings = project.settings(server)
    first = asyncio.run(sync(settings, settings.database_url or ""))
    assert len(first.created) == 3
    before = {n: d.response.updated for n, d in state(settings).deployments.items()}
    rows_before = registry_table(settings)

    again = asyncio.run(sync(settings, settings.database_url or ""))

    assert again.server_writes == 0
    assert again.created == [] and again.updated == {} and len(again.unchanged) == 3
    assert again.registry_written == [] and again.block_written is False
    after = {n: d.response.updated for n, d in state(settings).deployments.items()}
    assert after == before
    assert registry_table(settings) == rows_before
    assert "say-goodbye/by-hand" in after  # flow name derived as Prefect derives it


def test_a_changed_declaration_updates_only_that_deployment(
    server: Settings, project: Project
) -> None:
    settings = project.declare_and_sync(server, automate("first"), automate("second"))
    project.declare(
        automate("first"),
        automate(
            "second",
            concurrency="allow",
            concurrency_limit=2,
            schedules=[{"slug": "daily", "cron": "15 4 * * *", "timezone": "UTC"}],
        ),
    )
    report = asyncio.run(sync(settings, settings.database_url or ""))
    assert report.updated == {
        "hello/second": ["concurrency_limit", "job_variables", "schedules"]  # the guard's policy
    }
    assert report.unchanged == ["hello/first"]
    assert report.registry_written == ["second"]
    second = state(settings).deployments["hello/second"]
    assert second.spec.concurrency_limit == 2
    [schedule] = second.response.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("15 4 * * *", "UTC")  # type: ignore[union-attr]


def test_a_disabled_automate_is_deployed_paused(server: Settings, project: Project) -> None:
    settings = project.declare_and_sync(server, automate("sleeper", enabled=False))
    deployed = state(settings).deployments["hello/sleeper"]
    assert deployed.response.paused
    assert not any(s.active for s in deployed.response.schedules)


def test_undeclared_deployments_are_reported_and_pruned_only_on_request(
    server: Settings, project: Project
) -> None:
    settings = project.declare_and_sync(server, automate("keeper"), automate("leaver"))
    stray = _stray_deployment(settings)
    project.declare(automate("keeper"))

    report = asyncio.run(sync(settings, settings.database_url or ""))
    assert report.undeclared == sorted(["hello/leaver", stray])
    assert report.pruned == [] and report.server_writes == 0
    assert set(state(settings).deployments) == {"hello/keeper", "hello/leaver", stray}
    assert "leaver" in [r["name"] for r in registry_table(settings)]

    pruned = asyncio.run(sync(settings, settings.database_url or "", prune=True))
    assert pruned.pruned == ["hello/leaver"]  # the stray was not created by this tool: kept
    assert pruned.registry_removed == ["leaver"]
    assert set(state(settings).deployments) == {"hello/keeper", stray}
    assert [r["name"] for r in registry_table(settings)] == ["keeper"]


def _stray_deployment(settings: Settings) -> str:
    async def create() -> str:
        async with prefect_client(settings.api_url) as client:
            flow_id = await client.create_flow_from_name("hand-made")
            await client.create_deployment(flow_id=flow_id, name="by-someone")
        return "hand-made/by-someone"

    return asyncio.run(create())


BAD_DECLARATIONS = {
    "unknown key": (automate("bad", colour="blue"), "colour"),
    "bad cron": (automate("bad", schedules=[{"cron": "99 * * * *"}]), "schedules[0].cron"),
    "unknown timezone": (
        automate("bad", schedules=[{"cron": "0 3 * * *", "timezone": "Mars/Base"}]),
        "schedules[0].timezone",
    ),
    "missing entrypoint": (automate("bad", entrypoint=None), "entrypoint"),
    "entrypoint file missing": (automate("bad", entrypoint="flows/nope.py:nope"), "entrypoint"),
    "recurring without schedule": (automate("bad", schedules=[]), "schedules"),
    "duplicate name": (automate("fine"), "name"),
}


@pytest.mark.parametrize("case", sorted(BAD_DECLARATIONS))
def test_an_invalid_registry_syncs_nothing_anywhere(
    server: Settings, project: Project, case: str
) -> None:
    bad, field = BAD_DECLARATIONS[case]
    project.declare(automate("fine"), bad)
    settings = project.settings(server)
    with pytest.raises(DeclarationError) as caught:
        asyncio.run(sync(settings, settings.database_url or ""))
    assert (bad["name"], field) in [(p.automate, p.field) for p in caught.value.problems]
    assert state(settings).deployments == {}
    assert registry_table(settings) == []


def test_the_cli_refuses_an_invalid_registry_naming_automate_and_field(
    server: Settings, project: Project
) -> None:
    project.declare(automate("fine"), automate("bad", schedules=[{"cron": "99 * * * *"}]))
    settings = project.settings(server)
    done = run_module("automates.cli", "sync", env=cli_env(settings))
    assert done.returncode == 2
    assert "automate 'bad', field 'schedules[0].cron'" in done.stderr
    assert "nothing was changed" in done.stderr
    assert state(settings).deployments == {}


def test_the_store_block_holds_the_store_url(server: Settings) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect_sqlalchemy import SqlAlchemyConnector

    settings = layer_settings(server, project_root=REPO)
    asyncio.run(sync(settings, settings.database_url or ""))
    with temporary_settings(updates={PREFECT_API_URL: settings.api_url}):
        block = SqlAlchemyConnector.load(settings.store_block)
    expected = connector_for(settings.database_url or "")
    assert block.connection_info == expected.connection_info
    with block.get_connection() as connection:  # the block really reaches the store
        count = connection.execute(text("SELECT count(*) FROM automates.automates")).scalar()
    assert count == len(shipped_registry().automates)


def test_sync_brings_an_older_unresponsive_runs_automation_up_to_date(server: Settings) -> None:
    """An automation written by an older version (one that took a Suspended run for dead) is
    updated in place by the next sync, not left as it was."""
    from prefect.events.schemas.automations import EventTrigger

    from automates.server.unresponsive import AUTOMATION_NAME, automation, ensure

    async def scenario() -> tuple[set[str], int]:
        async with prefect_client(server.api_url) as client:
            for existing in await client.read_automations_by_name(AUTOMATION_NAME):
                await client.delete_automation(existing.id)
            older = automation(30)
            old_trigger = older.trigger
            assert isinstance(old_trigger, EventTrigger)
            older.trigger = old_trigger.model_copy(
                update={"expect": {"prefect.flow-run.heartbeat", "prefect.flow-run.Completed"}}
            )
            await client.create_automation(older)
            assert not await ensure(client, server.run_heartbeat_seconds)
            found = await client.read_automations_by_name(AUTOMATION_NAME)
            trigger = found[0].trigger
            assert isinstance(trigger, EventTrigger)
            return set(trigger.expect), len(found)

    expect, count = asyncio.run(scenario())
    assert (expect, count) == ({"automates.flow-run.*", "prefect.flow-run.*"}, 1)
