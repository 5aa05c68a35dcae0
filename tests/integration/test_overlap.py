"""No overlapping runs: Prefect's concurrency limit first, an advisory lock beneath it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prefect.client.schemas.objects import FlowRun

from automates.server.client import prefect_client
from automates.settings import Settings
from automates.store.engine import make_engine
from automates.sync import sync
from tests.fixtures.projects import Project, automate


def script(name: str, command: list[str], **fields: Any) -> dict[str, Any]:
    return automate(name, kind="oneshot", schedules=[], entrypoint=None, command=command, **fields)


def trigger_twice(settings: Settings, full_name: str) -> list[FlowRun]:
    """Two runs requested at the same moment; both awaited to their final state."""

    async def go() -> list[FlowRun]:
        async with prefect_client(settings.api_url) as client:
            deployment = await client.read_deployment_by_name(full_name)
            ids = [
                (await client.create_flow_run_from_deployment(deployment.id)).id for _ in range(2)
            ]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                runs = [await client.read_flow_run(i) for i in ids]
                if all(r.state is not None and r.state.is_final() for r in runs):
                    return runs
                await asyncio.sleep(0.5)
        raise AssertionError(f"runs of {full_name} did not finish")

    return asyncio.run(go())


def journaled(settings: Settings, runs: list[FlowRun]) -> list[dict[str, Any]]:
    from sqlalchemy import text

    engine = make_engine(settings.database_url or "")
    deadline = time.monotonic() + 20
    try:
        while True:
            with engine.connect() as connection:
                rows = [
                    dict(r._mapping)
                    for r in connection.execute(
                        text(
                            "SELECT * FROM automates.execution_journal"
                            " WHERE flow_run_id = ANY(:ids) ORDER BY started_at"
                        ),
                        {"ids": [r.id for r in runs]},
                    )
                ]
            if len(rows) == len(runs) or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)
    finally:
        engine.dispose()


def test_a_second_trigger_waits_for_the_first(
    server: Settings, project: Project, worker: str
) -> None:
    project.declare(script("nightly-slow", ["scripts/nap.sh", "3"], family="exports",
                           work_pool=worker))  # fmt: skip
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))

    runs = trigger_twice(settings, "script/nightly-slow")
    assert [r.state_name for r in runs] == ["Completed", "Completed"]
    first, second = journaled(settings, runs)
    assert second["started_at"] >= first["finished_at"], "the runs overlapped"


def test_the_advisory_lock_refuses_a_second_run_that_slipped_through(
    server: Settings, project: Project, worker: str
) -> None:
    # No Prefect limit here, so both runs start: the lock is the layer that holds.
    billing = script(
        "billing", ["scripts/nap.sh", "8"], family="bank", touches=["money"], work_pool=worker
    )
    project.declare({**billing, "concurrency_limit": None})  # null: unlimited
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))

    runs = trigger_twice(settings, "script/billing")
    assert sorted(r.state_name or "" for r in runs) == ["Completed", "Skipped"]
    skipped = next(r for r in runs if r.state_name == "Skipped")
    assert skipped.state is not None
    assert "holds its advisory lock" in (skipped.state.message or "")
    outcomes = sorted(row["outcome"] for row in journaled(settings, runs))
    assert outcomes == ["completed", "skipped"]
