"""Approvals on a real Prefect server and worker: a before_first_run run suspended and resumed
through `resume_flow_run` (the UI's API) or `automates approve`; before_enable schedules."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import FlowRun, StateType
from prefect.flow_runs import aresume_flow_run
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import text
from typer.testing import CliRunner

from automates.cli.app import app
from automates.reconcile import reconcile
from automates.registry.digest import declaration_digest
from automates.registry.loader import load_registry
from automates.server.client import prefect_client
from automates.settings import Settings
from automates.store.engine import make_engine
from automates.store.held import schedules_held
from automates.sync import sync
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import cli_env, raised_alerts, wait_for

GATED = "hello/gated"


def forget_approvals(settings: Settings, *names: str) -> None:
    """The session's store outlives each test: start from no approval of these automates."""
    engine = make_engine(settings.database_url or "")
    with engine.begin() as connection:
        connection.execute(
            text("DELETE FROM automates.approvals WHERE automate = ANY(:names)"),
            {"names": list(names)},
        )
    engine.dispose()


def approvals(settings: Settings, name: str) -> list[dict[str, Any]]:
    engine = make_engine(settings.database_url or "")
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT * FROM automates.approvals WHERE automate = :name ORDER BY id"),
            {"name": name},
        )
        found = [dict(row._mapping) for row in rows]
    engine.dispose()
    return found


def digest_now(settings: Settings, name: str) -> str:
    declared = load_registry(settings.registry_path).get(name)
    assert declared is not None
    return declaration_digest(declared, declared.work_pool or settings.work_pool)


def start(settings: Settings, full_name: str) -> UUID:
    async def go() -> UUID:
        async with prefect_client(settings.api_url) as client:
            deployment = await client.read_deployment_by_name(full_name)
            return (await client.create_flow_run_from_deployment(deployment.id)).id

    return asyncio.run(go())


def read(settings: Settings, run_id: UUID) -> FlowRun:
    async def go() -> FlowRun:
        async with prefect_client(settings.api_url) as client:
            return await client.read_flow_run(run_id)

    return asyncio.run(go())


def wait_until(
    settings: Settings, run_id: UUID, done: Callable[[FlowRun], bool], timeout: float = 90
) -> FlowRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = read(settings, run_id)
        if done(run):
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still {run.state_name}: {run.state}")


def suspended(run: FlowRun) -> bool:
    return run.state is not None and run.state.type is StateType.PAUSED


def final(run: FlowRun) -> bool:
    return run.state is not None and run.state.is_final()


def resume(settings: Settings, run_id: UUID, answer: dict[str, Any]) -> None:
    """As the UI's Resume button does: the run's input, through the resume API."""

    async def go() -> None:
        with temporary_settings(updates={PREFECT_API_URL: settings.api_url}):
            await aresume_flow_run(run_id, run_input=answer)

    asyncio.run(go())


def state_names(settings: Settings, run_id: UUID) -> list[str]:
    async def go() -> list[str]:
        async with prefect_client(settings.api_url) as client:
            return [s.name or "" for s in await client.read_flow_run_states(run_id)]

    return asyncio.run(go())


def approval_alerts(settings: Settings, name: str, seen: int = 0) -> list[dict[str, Any]]:
    """The approval alerts of `name` raised after its first `seen` alerts (the session's
    store outlives each test)."""
    raised = raised_alerts(settings, name)[seen:]
    return [a for a in raised if a["kind"] in ("approval_waiting", "approval_decided")]


def told_waiting(settings: Settings, name: str, seen: int, run_id: UUID) -> dict[str, Any]:
    """The approval_waiting alert of the run (raised once the run is suspended)."""

    def find() -> dict[str, Any] | None:
        found = [
            a
            for a in approval_alerts(settings, name, seen)
            if (a["kind"], a["flow_run_id"]) == ("approval_waiting", run_id)
        ]
        return found[0] if found else None

    return wait_for(find, 30, f"the approval_waiting alert of {name}")


def input_schema(settings: Settings, run: FlowRun) -> dict[str, Any]:
    assert run.state is not None
    keyset = run.state.state_details.run_input_keyset
    assert keyset is not None

    async def go() -> Any:
        async with prefect_client(settings.api_url) as client:
            return await client.read_flow_run_input(run.id, keyset["schema"])

    return dict(json.loads(asyncio.run(go())))


def test_first_run_of_each_version_waits_for_approval(
    server: Settings, project: Project, worker: str
) -> None:
    forget_approvals(server, "gated", "later", "awaits")
    gated = automate(
        "gated", kind="oneshot", schedules=[], work_pool=worker, approval="before_first_run"
    )
    later = automate(
        "later", kind="oneshot", schedules=[], work_pool=worker, approval="before_enable"
    )
    # The guard suspends an async flow through the same call (Prefect's own loop thread).
    awaits = {**gated, "name": "awaits", "entrypoint": "flows/hello_async.py:hello_async"}
    project.declare(gated, later, awaits)
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))
    first_version = digest_now(settings, "gated")
    seen = {name: len(raised_alerts(settings, name)) for name in ("gated", "awaits", "later")}
    waiting_async = start(settings, "hello-async/awaits")

    # An unapproved before_enable automate runs not even on request: Skipped, saying why.
    skipped = wait_until(settings, start(settings, "hello/later"), final)
    assert skipped.state_name == "Skipped"
    assert "automates approve later" in (skipped.state.message or "")  # type: ignore[union-attr]

    # The first run waits, suspended, with the approval form Prefect's UI shows on Resume.
    first = wait_until(settings, start(settings, GATED), suspended)
    assert first.state_name == "Suspended"
    schema = input_schema(settings, first)
    assert schema["required"] == ["approve"]
    assert {"approve", "by", "note"} <= set(schema["properties"])
    assert approvals(settings, "gated") == []
    waiting = told_waiting(settings, "gated", seen["gated"], first.id)
    assert waiting["resolved_at"] is None
    assert "automates approve gated" in waiting["body"]

    # Approved from the UI's path: the run runs, and the store says who approved what.
    resume(settings, first.id, {"approve": True, "by": "alice"})
    first = wait_until(settings, first.id, final)
    assert first.state_name == "Completed"
    [given] = approvals(settings, "gated")
    assert (given["approved_by"], given["digest"], given["flow_run_id"]) == (
        "alice",
        first_version,
        first.id,
    )
    assert (given["stage"], given["note"]) == ("before_first_run", None)
    waiting, decided = approval_alerts(settings, "gated", seen["gated"])
    assert waiting["kind"] == "approval_waiting" and waiting["resolved_at"] is not None
    assert (decided["kind"], decided["title"]) == (
        "approval_decided",
        "gated: resolved, approved by alice",
    )
    assert wait_until(settings, waiting_async, suspended).state_name == "Suspended"
    told_waiting(settings, "awaits", seen["awaits"], waiting_async)
    resume(settings, waiting_async, {"approve": True})
    assert wait_until(settings, waiting_async, final).state_name == "Completed"
    assert [a["approved_by"] for a in approvals(settings, "awaits")] == ["prefect-ui"]
    waiting, decided = approval_alerts(settings, "awaits", seen["awaits"])
    assert waiting["kind"] == "approval_waiting" and waiting["resolved_at"] is not None
    assert decided["title"] == "awaits: resolved, approved by prefect-ui"

    # The same version runs again without waiting.
    second = wait_until(settings, start(settings, GATED), final)
    assert second.state_name == "Completed"
    assert "Suspended" not in state_names(settings, second.id)

    # A changed declaration waits again; `automates approve` records and resumes it.
    project.declare({**gated, "description": "changed"}, later, awaits)
    asyncio.run(sync(settings, settings.database_url or ""))
    third = wait_until(settings, start(settings, GATED), suspended)
    told_waiting(settings, "gated", seen["gated"], third.id)
    answer = cli(cli_env(settings), "approve", "gated", "--by", "bob")
    assert answer["resumed"] == [str(third.id)] and answer["new"] is True
    assert answer["digest"] == digest_now(settings, "gated") != first_version
    third = wait_until(settings, third.id, final)
    assert third.state_name == "Completed"
    assert [(a["approved_by"], a["flow_run_id"]) for a in approvals(settings, "gated")] == [
        ("alice", first.id),
        ("bob", third.id),
    ]
    # Told once, by the CLI, not again by the run it resumed.
    waiting, decided = approval_alerts(settings, "gated", seen["gated"])[2:]
    assert (waiting["kind"], waiting["flow_run_id"]) == ("approval_waiting", third.id)
    assert waiting["resolved_at"] is not None
    assert decided["title"] == "gated: resolved, approved by bob"

    # Rejected from the UI: the run ends Cancelled, named Rejected, and nothing is approved.
    project.declare({**gated, "description": "changed again"}, later, awaits)
    asyncio.run(sync(settings, settings.database_url or ""))
    fourth = wait_until(settings, start(settings, GATED), suspended)
    told_waiting(settings, "gated", seen["gated"], fourth.id)
    resume(settings, fourth.id, {"approve": False, "note": "not this week"})
    fourth = wait_until(settings, fourth.id, final)
    assert (fourth.state_type, fourth.state_name) == (StateType.CANCELLED, "Rejected")
    assert fourth.state is not None
    assert fourth.state.message == (
        f"rejected by prefect-ui: version {digest_now(settings, 'gated')[:12]} of gated "
        "was not approved: not this week"
    )
    assert len(approvals(settings, "gated")) == 2
    journaled = cli(cli_env(settings), "logs", "gated")
    assert [r["outcome"] for r in journaled if r["flow_run_id"] == str(fourth.id)] == ["cancelled"]
    # A rejection approves nothing, but it is a decision: the waiting alert is resolved.
    told = approval_alerts(settings, "gated", seen["gated"])
    assert [a["kind"] for a in told] == ["approval_waiting", "approval_decided"] * 3
    assert told[-1]["title"] == "gated: resolved, rejected (this run) by prefect-ui"
    assert told[-2]["resolved_at"] is not None
    # An unapproved before_enable run is skipped and adds nothing (sync told the approvers).
    assert raised_alerts(settings, "later")[seen["later"] :] == []


def schedules_active(settings: Settings, full_name: str) -> list[bool]:
    async def go() -> list[bool]:
        async with prefect_client(settings.api_url) as client:
            deployment = await client.read_deployment_by_name(full_name)
        return [s.active for s in deployment.schedules]

    return asyncio.run(go())


def held_now(settings: Settings) -> frozenset[str]:
    """What sync and reconcile hold paused (automates/store/held.py)."""
    engine = make_engine(settings.database_url or "")
    with engine.connect() as connection:
        held = schedules_held(connection, load_registry(settings.registry_path), settings.work_pool)
    engine.dispose()
    return held


def cli(env: dict[str, str], *args: str, code: int = 0) -> Any:
    """`automates ARGS --json` in this process (as an operator runs it, without the start-up)."""
    done = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert done.exit_code == code, (done.stdout, done.stderr)
    return json.loads(done.stdout)


def refused(env: dict[str, str], *args: str) -> str:
    return str(cli(env, *args, code=2)["error"])


def test_before_enable_syncs_inactive_until_approved(server: Settings, project: Project) -> None:
    forget_approvals(server, "vetted", "plain")
    vetted = automate("vetted", approval="before_enable")
    project.declare(vetted, automate("plain"))
    settings = project.settings(server)
    env = cli_env(settings)
    asyncio.run(sync(settings, settings.database_url or ""))
    assert schedules_active(settings, "hello/vetted") == [False]
    assert schedules_active(settings, "hello/plain") == [True]
    assert held_now(settings) == {"vetted"}
    assert not asyncio.run(reconcile(settings, held=held_now(settings))).has_drift
    # The approvers are told once, however many syncs find it still waiting.
    seen = len(raised_alerts(settings, "vetted"))
    asyncio.run(sync(settings, settings.database_url or ""))
    [waiting] = [a for a in raised_alerts(settings, "vetted") if a["resolved_at"] is None]
    assert waiting["kind"] == "approval_waiting" and "(before_enable)" in waiting["body"]
    assert len(raised_alerts(settings, "vetted")) == seen

    # Bad requests change nothing.
    assert "no automate named 'nope'" in refused(env, "approve", "nope")
    assert "approval: none" in refused(env, "approve", "plain")
    project.declare({**vetted, "description": "edited, not synced"}, automate("plain"))
    assert "run `automates sync`, then approve" in refused(env, "approve", "vetted")
    assert approvals(settings, "vetted") == approvals(settings, "plain") == []
    project.declare(vetted, automate("plain"))

    # Approving activates the schedules through the API, as a sync would; twice is harmless.
    answer = cli(env, "approve", "vetted", "--by", "carol", "--note", "read it")
    assert (answer["new"], answer["schedules"], answer["approved_by"]) == (True, "active", "carol")
    assert schedules_active(settings, "hello/vetted") == [True]
    decided = raised_alerts(settings, "vetted")[-1]
    assert (decided["kind"], decided["title"]) == (
        "approval_decided",
        "vetted: resolved, approved by carol",
    )
    assert all(a["resolved_at"] is not None for a in raised_alerts(settings, "vetted")[:-1])
    again = cli(env, "approve", "vetted", "--by", "dave")
    assert (again["new"], again["approved_by"]) == (False, "carol")
    assert [(a["approved_by"], a["note"]) for a in approvals(settings, "vetted")] == [
        ("carol", "read it")
    ]
    report = asyncio.run(sync(settings, settings.database_url or ""))
    assert report.updated == {} and held_now(settings) == set()
    assert not asyncio.run(reconcile(settings, held=held_now(settings))).has_drift

    # A change asks again: the next sync pauses the schedules of the new version.
    project.declare({**vetted, "description": "changed"}, automate("plain"))
    asyncio.run(sync(settings, settings.database_url or ""))
    assert schedules_active(settings, "hello/vetted") == [False]
