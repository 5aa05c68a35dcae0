"""missed-run-check on a real server, run by a real worker from its declaration: of four
one-off ticks that fell due, the one a worker ran is fine; the one whose pool has no worker,
the one whose run is gone and the one whose run Crashed are each reported once."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.states import Crashed

from automates.settings import Settings
from automates.sync import sync
from tests.conftest import REPO
from tests.fixtures.misfire import api, deployment_runs, events_named, final
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import run_deployment, wait_for

CHECK = "missed-run-check/missed-run-check"


def test_each_tick_that_did_not_run_is_reported_once(
    server: Settings, project: Project, worker: str
) -> None:
    nobody = f"nobody-{os.urandom(3).hex()}"  # a pool no worker serves
    tick = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
    once = [{"slug": "once", "at": tick.isoformat().replace("+00:00", "Z")}]
    later = [{"slug": "once", "at": (tick + timedelta(hours=1)).isoformat()}]
    shutil.copy(REPO / "flows" / "missed_runs.py", project.root / "flows" / "missed_runs.py")
    project.declare(
        automate("served", schedules=once, work_pool=worker),
        automate("stranded", schedules=once, work_pool=nobody),
        automate("vanished", schedules=once, work_pool=nobody),
        automate("crashed", schedules=once, work_pool=nobody),
        automate("not-yet", schedules=later, work_pool=nobody),  # due in an hour: not judged
        automate(
            "missed-run-check",
            kind="tool",
            schedules=[],
            family="sre",
            entrypoint="flows/missed_runs.py:missed_run_check",
            work_pool=worker,
        ),
    )
    settings = project.settings(server)
    asyncio.run(sync(settings, settings.database_url or ""))
    found = {
        name: api(settings, partial(PrefectClient.read_deployment_by_name, name=f"hello/{name}"))
        for name in ("served", "stranded", "vanished", "crashed")
    }

    def ticked(name: str) -> list[Any] | None:
        runs = deployment_runs(settings, found[name].id)
        return runs if runs and (name != "served" or all(final(r) for r in runs)) else None

    runs = {name: wait_for(partial(ticked, name), 120, f"{name}'s run") for name in found}
    assert [r.state_name for r in runs["served"]] == ["Completed"]

    async def as_it_happened(client: PrefectClient) -> None:
        await client.delete_flow_run(runs["vanished"][0].id)  # e.g. removed by hand
        await client.set_flow_run_state(
            runs["crashed"][0].id, Crashed(message="the host died"), force=True
        )

    api(settings, as_it_happened)
    time.sleep(max(0.0, (tick + timedelta(seconds=3) - datetime.now(UTC)).total_seconds()))

    check = run_deployment(settings, CHECK, timeout=180, grace_seconds=2)
    assert check.state is not None and check.state.is_completed()
    assert (check.state_name, check.state.message) == (
        "Findings",
        "4 due tick(s) checked, 3 missed",
    )

    def three() -> list[dict[str, Any]] | None:
        events = events_named(settings, "automates.automate.missed")
        return events if len(events) == 3 else None

    events = {e["resource"]["prefect.resource.name"]: e for e in wait_for(three, 60, "events")}
    assert set(events) == {"stranded", "vanished", "crashed"}
    # Late once Prefect's late-runs service has passed by, Scheduled until then.
    stranded = events["stranded"]["payload"]
    assert stranded["state"] in ("Scheduled", "Late")
    assert stranded["reason"] == (
        f"its run is still {stranded['state']}: it never started "
        f"(does a worker serve pool {nobody}?)"
    )
    assert events["vanished"]["payload"]["reason"].startswith("no flow run exists for it")
    assert events["crashed"]["payload"]["state"] == "Crashed"
    assert all(e["payload"]["tick"] == tick.isoformat() for e in events.values())

    # The next check sees the same misses: the same event ids, so no second alert.
    again = run_deployment(settings, CHECK, timeout=180, grace_seconds=2)
    assert again.state is not None and again.state.message == "4 due tick(s) checked, 3 missed"
    expected = {
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"automates:missed/{name}/once/{tick.isoformat()}"))
        for name in events
    }
    assert {e["id"] for e in events.values()} == expected
    assert {e["id"] for e in events_named(settings, "automates.automate.missed")} == expected
