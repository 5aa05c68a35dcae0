"""Overlapping runs under each concurrency policy, on a real server and a real process worker.

Each test starts runs of one script automate through the API. The first run holds
(`scripts/hold.sh`) until the test creates its release file, so "a run is active" never depends
on how fast the machine starts the next one; the test waits until the guard's slot shows the
run as its holder (pg_locks), not for a time.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import FlowRun, StateType

from automates.guard.concurrency import ACTIVE, WAITING, holder_of
from automates.server.client import prefect_client
from automates.settings import Settings
from automates.store.engine import make_engine
from automates.store.journals import lock_holder
from tests.fixtures import projects
from tests.fixtures.projects import Project

NAP = ["scripts/nap.sh", "0"]


def script(name: str, **fields: Any) -> dict[str, Any]:
    """A script automate whose command, for each run, is the one the test gives `start`."""
    return projects.script(name, ["scripts/per_run.sh", "runs"], family="exports", **fields)


def start(settings: Settings, name: str, argv: list[str]) -> UUID:
    """A run of script/NAME that runs `argv`: scripts/per_run.sh reads it from the project's
    runs/ folder, by the run's id (no run can carry its own command)."""

    async def go() -> UUID:
        async with prefect_client(settings.api_url) as client:
            deployment = await client.read_deployment_by_name(f"script/{name}")
            run = await client.create_flow_run_from_deployment(deployment.id)
            return run.id

    run = asyncio.run(go())
    commands = settings.project_root / "runs"
    commands.mkdir(exist_ok=True)
    written = commands / f"{run}.tmp"
    written.write_text("".join(f"{argument}\n" for argument in argv))
    written.rename(commands / str(run))  # whole or not at all: the script may be waiting
    return run


def read(settings: Settings, *ids: UUID) -> list[FlowRun]:
    async def go() -> list[FlowRun]:
        async with prefect_client(settings.api_url) as client:
            return [await client.read_flow_run(i) for i in ids]

    return asyncio.run(go())


def delete(settings: Settings, run: UUID) -> None:
    async def go() -> None:
        async with prefect_client(settings.api_url) as client:
            await client.delete_flow_run(run)

    asyncio.run(go())


def until(condition: Any, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not in {seconds} s: {what}"
        time.sleep(0.3)


def final(settings: Settings, *ids: UUID) -> list[FlowRun]:
    def done() -> bool:
        return all(r.state is not None and r.state.is_final() for r in read(settings, *ids))

    until(done, f"runs {ids} final")
    return read(settings, *ids)


def holding(settings: Settings, name: str, purpose: str, run: UUID) -> None:
    """Wait until `run` holds the automate's slot lock (`active`) or waiting place."""
    engine = make_engine(settings.database_url or "")
    try:

        def held() -> bool:
            with engine.connect() as connection:
                return holder_of(lock_holder(connection, name, purpose)) == str(run)

        until(held, f"run {run} holding {purpose} of {name}")
    finally:
        engine.dispose()


def journal(settings: Settings, *ids: UUID) -> dict[UUID, dict[str, Any]]:
    """The execution journal rows of these runs, once all are written."""
    from sqlalchemy import text

    engine = make_engine(settings.database_url or "")
    rows: dict[UUID, dict[str, Any]] = {}

    def written() -> bool:
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT * FROM automates.execution_journal WHERE flow_run_id = ANY(:ids)"),
                {"ids": list(ids)},
            )
            rows.update({r.flow_run_id: dict(r._mapping) for r in found})
        return len(rows) == len(ids)

    try:
        until(written, f"journal rows of {ids}", seconds=20)
    finally:
        engine.dispose()
    return rows


def logged(settings: Settings, run: UUID, *expected: str) -> list[str]:
    """The run's log lines once each `expected` text is in one: a run's last lines reach the
    server after its final state (Prefect ships logs in batches), so they are waited for."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async def go() -> list[str]:
        async with prefect_client(settings.api_url) as client:
            logs = await client.read_logs(
                LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run])), limit=200
            )
            return [log.message for log in logs]

    lines: list[str] = []

    def complete() -> bool:
        lines[:] = asyncio.run(go())
        return all(any(text in line for line in lines) for text in expected)

    until(complete, f"log lines {expected} of run {run}", seconds=30)
    return lines


def test_forbid_skips_a_run_while_one_is_active(
    server: Settings, project: Project, worker: str, tmp_path: Path
) -> None:
    declaration = script("solo", work_pool=worker)  # forbid: the default
    settings = project.declare_and_sync(server, declaration)
    release = tmp_path / "release"
    first = start(settings, "solo", ["scripts/hold.sh", str(release)])
    holding(settings, "solo", ACTIVE, first)

    second = start(settings, "solo", NAP)
    [skipped] = final(settings, second)
    assert skipped.state is not None and skipped.state.type is StateType.COMPLETED
    assert skipped.state_name == "Skipped"
    assert skipped.state.message == f"skipped: run {first} of solo is active (concurrency: forbid)"

    release.touch()
    [done] = final(settings, first)
    assert done.state_name == "Completed"
    rows = journal(settings, first, second)
    assert (rows[first]["outcome"], rows[second]["outcome"]) == ("completed", "skipped")
    assert rows[second]["message"] == skipped.state.message


def test_queue_one_lets_one_run_wait_and_skips_the_next(
    server: Settings, project: Project, worker: str, tmp_path: Path
) -> None:
    declaration = script("queued", concurrency="queue_one", work_pool=worker)
    settings = project.declare_and_sync(server, declaration)
    release = tmp_path / "release"
    first = start(settings, "queued", ["scripts/hold.sh", str(release)])
    holding(settings, "queued", ACTIVE, first)
    second = start(settings, "queued", NAP)
    holding(settings, "queued", WAITING, second)

    third = start(settings, "queued", NAP)
    [skipped] = final(settings, third)
    assert skipped.state is not None and skipped.state_name == "Skipped"
    assert skipped.state.message == (
        f"skipped: run {first} of queued is active and run {second} waits (concurrency: queue_one)"
    )
    [waiting] = read(settings, second)
    assert waiting.state is not None and waiting.state.is_running()

    release.touch()
    done_first, done_second = final(settings, first, second)
    assert (done_first.state_name, done_second.state_name) == ("Completed", "Completed")
    logged(
        settings,
        second,
        f"waiting for run {first} of queued to finish",
        f"run {first} is over: this run starts",
    )
    rows = journal(settings, first, second, third)
    assert [rows[r]["outcome"] for r in (first, second, third)] == [
        "completed",
        "completed",
        "skipped",
    ]
    # The waiting run's script ran after the first run's had ended.
    assert rows[second]["finished_at"] >= rows[first]["finished_at"]


def test_replace_cancels_the_active_run_and_the_new_one_runs(
    server: Settings, project: Project, worker: str, tmp_path: Path
) -> None:
    declaration = script("swapper", concurrency="replace", work_pool=worker)
    settings = project.declare_and_sync(server, declaration)
    first = start(settings, "swapper", ["scripts/hold.sh", str(tmp_path / "never")])
    holding(settings, "swapper", ACTIVE, first)

    second = start(settings, "swapper", NAP)
    [completed] = final(settings, second)
    assert completed.state_name == "Completed"
    [replaced] = final(settings, first)
    assert replaced.state is not None and replaced.state.type is StateType.CANCELLED
    message = f"cancelled: replaced by run {second} of swapper (concurrency: replace)"
    assert (replaced.state_name, replaced.state.message) == ("Cancelled", message)
    logged(settings, second, f"replacing run {first} of swapper: cancelled it")
    rows = journal(settings, first, second)
    assert (rows[first]["outcome"], rows[first]["message"]) == ("cancelled", message)
    assert rows[first]["context"] == {"replaced_by": str(second)}
    assert rows[second]["outcome"] == "completed"


def test_allow_overlaps_up_to_the_limit(
    server: Settings, project: Project, worker: str, tmp_path: Path
) -> None:
    declaration = script("pair", concurrency="allow", concurrency_limit=2, work_pool=worker)
    settings = project.declare_and_sync(server, declaration)
    release = tmp_path / "release"
    hold = ["scripts/hold.sh", str(release)]
    first, second = start(settings, "pair", hold), start(settings, "pair", hold)

    def both_running() -> bool:
        return all(
            r.state is not None and r.state.is_running() for r in read(settings, first, second)
        )

    until(both_running, "both runs of pair running at once")
    # Past the limit, Prefect holds the run back (its deployment concurrency limit).
    third = start(settings, "pair", NAP)
    until(
        lambda: read(settings, third)[0].state_name == "AwaitingConcurrencySlot",
        "the third run of pair awaiting a slot",
    )

    delete(settings, third)  # seen held back; Prefect would retry it only 30 s later

    release.touch()
    runs = final(settings, first, second)
    assert [r.state_name for r in runs] == ["Completed", "Completed"]
    rows = journal(settings, first, second)
    assert rows[second]["started_at"] < rows[first]["finished_at"], "the runs did not overlap"
