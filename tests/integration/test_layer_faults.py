"""Killing the layer's own processes while runs are in flight, on a layer `automates up` started
on embedded defaults, recovered by its supervision alone: nobody runs `up` again (issues 12
and 14).

Killed: the process worker's whole process group and the agent dispatcher mid-run, the
embedded PostgreSQL's postmaster while runs are being submitted, the Prefect server while a
run's command is running. After the
recovery every run must reach a final state within RECOVERY_BOUND_SECONDS, be journaled exactly
once, and no run's command may have started twice. The `run-watch` automate is run by the test
every few seconds, as its schedule would (every two minutes) in production.

Bound (documented in docs/decisions/0031-no-run-hangs-unseen.md): a run whose process died is
Crashed 90 s after its last heartbeat (plus one heartbeat and the server's proactive-trigger
pass); a run left Pending is re-submitted after AUTOMATES_RUN_PENDING_GRACE_SECONDS (30 here)
and, if still not started one grace later, Crashed. 420 s covers both with the machine loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from prefect.client.schemas.objects import FlowRun

from automates.server.client import prefect_client
from automates.store import embedded_pg
from tests.conftest import REPO, free_port
from tests.fixtures.commands import status_report
from tests.fixtures.projects import TEMPLATE, registry_yaml
from tests.fixtures.servers import wait_for

RECOVERY_BOUND_SECONDS = 420
WATCH_EVERY_SECONDS = 15


class Layer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.started = root / "started.txt"  # count.sh: "<flow run id> <pid> <folder>" per start
        self.port = free_port()
        self.env = {
            **os.environ,
            "AUTOMATES_PROJECT_ROOT": str(root / "checkout"),
            "AUTOMATES_REGISTRY_FILE": str(root / "checkout" / "deployments" / "registry.yaml"),
            "AUTOMATES_DATA_DIR": str(self.data),
            "AUTOMATES_SERVER_PORT": str(self.port),
            "AUTOMATES_RUN_PENDING_GRACE_SECONDS": "30",
        }
        self.env.pop("AUTOMATES_DATABASE_URL", None)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def automates(self, *args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "automates.cli", *args, "--json"],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    def status(self) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "automates.cli", "status", "--json"],
            env=self.env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode in (0, 1), done.stdout + done.stderr
        return json.loads(done.stdout)

    def pid_of(self, component: str) -> int:
        return int(status_report(self.env)["components"][component]["pid"])

    def recovered(self, killed: dict[str, int]) -> Any:
        """Wait until supervision has every killed component running again (a new pid), its
        restart counted, and the whole layer is ok; the status then. (supervisord reports the
        new pid itself; the count is the crash watch's, a listener that supervisord tells of
        the restart through its event queue, and that may be later on a loaded machine.)"""

        def back(report: Any) -> bool:
            found = report["components"]
            again = all(
                found[name]["state"] == "running"
                and found[name]["pid"] != pid
                and found[name]["restarts"] >= 1
                for name, pid in killed.items()
            )
            return bool(again and report["ok"])

        # Polled in-process (status_report); the CLI's own report then says the same.
        wait_for(
            lambda: back(status_report(self.env)),
            RECOVERY_BOUND_SECONDS,
            f"supervision to restart {list(killed)}",
        )
        report = self.status()
        assert back(report), report
        return report

    def api(self, call: Any) -> Any:
        async def go() -> Any:
            async with prefect_client(self.api_url) as client:
                return await call(client)

        return asyncio.run(go())

    def start_run(self, deployment: str) -> UUID:
        async def go(client: Any) -> UUID:
            found = await client.read_deployment_by_name(deployment)
            return (await client.create_flow_run_from_deployment(found.id)).id

        return self.api(go)

    def read(self, run: UUID) -> FlowRun:
        return self.api(lambda client: client.read_flow_run(run))

    def starts(self) -> Counter[str]:
        if not self.started.exists():
            return Counter()
        return Counter(line.split()[0] for line in self.started.read_text().splitlines() if line)

    def journal_counts(self, runs: list[UUID]) -> dict[UUID, int]:
        url = embedded_pg.running_url(self.data)
        assert url is not None
        with psycopg.connect(url) as connection:
            rows = connection.execute(
                "SELECT flow_run_id, count(*) FROM automates.execution_journal "
                "WHERE flow_run_id = ANY(%s) GROUP BY flow_run_id",
                (runs,),
            ).fetchall()
        return {run: 0 for run in runs} | {row[0]: row[1] for row in rows}

    def settle(self, runs: list[UUID]) -> dict[UUID, FlowRun]:
        """Run run-watch (as its schedule would) until every run is final and journaled."""
        deadline = time.monotonic() + RECOVERY_BOUND_SECONDS
        while True:
            watch = self.start_run("run-watch/run-watch")
            while not _final(self.read(watch)) and time.monotonic() < deadline:
                time.sleep(1)
            found = {run: self.read(run) for run in runs}
            if all(_final(r) for r in found.values()) and all(
                count == 1 for count in self.journal_counts(runs).values()
            ):
                return found
            if time.monotonic() > deadline:
                states = {str(r): f.state_name for r, f in found.items()}
                raise AssertionError(
                    f"not all final and journaled within {RECOVERY_BOUND_SECONDS} s: {states}, "
                    f"journal rows {self.journal_counts(runs)}"
                )
            time.sleep(WATCH_EVERY_SECONDS)

    def kill_leftover_commands(self) -> None:
        """count.sh runs in its own session: a killed flow run leaves it sleeping."""
        if not self.started.exists():
            return
        for line in self.started.read_text().splitlines():
            with contextlib.suppress(ProcessLookupError, IndexError, ValueError):
                os.kill(int(line.split()[1]), signal.SIGKILL)


def _final(run: FlowRun) -> bool:
    return run.state is not None and run.state.is_final()


def _declaration(name: str, seconds: int, started: Path) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "oneshot",
        "caste": "horlogers",
        "family": "exports",
        "agents": ["atlas"],
        "description": f"fault test: counts its starts, then sleeps {seconds} s",
        "schedules": [],
        "command": ["scripts/count.sh", str(started), str(seconds)],
        "timeout_seconds": 900,
        "concurrency": "allow",
        "concurrency_limit": None,
    }


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layer]:
    root = tmp_path_factory.mktemp("faults")
    layer = Layer(root)
    checkout = root / "checkout"
    shutil.copytree(TEMPLATE, checkout)
    for flow in ("run_watch.py", "agent_task_run.py"):
        shutil.copy(REPO / "flows" / flow, checkout / "flows" / flow)
    (checkout / "deployments").mkdir()
    watch = {
        "name": "run-watch",
        "kind": "tool",
        "caste": "vigies",
        "family": "sre",
        "agents": ["atlas"],
        "description": "run-watch, run by the test as its schedule would",
        "entrypoint": "flows/run_watch.py:run_watch",
        "schedules": [],
    }
    agent_runs = {  # as deployments/registry.yaml declares it
        "name": "agent-task-run",
        "kind": "tool",
        "caste": "ouvriers",
        "family": "agents",
        "agents": ["atlas"],
        "description": "one agent task run, on the dispatcher",
        "entrypoint": "flows/agent_task_run.py:agent_task_run",
        "work_pool": "agents",
        "schedules": [],
        "timeout_seconds": 1800,
        "concurrency": "allow",
        "concurrency_limit": None,
        "breaker_threshold": 1000,
    }
    registry = {
        "automates": [
            _declaration("long", 600, layer.started),
            _declaration("short", 4, layer.started),
            watch,
            agent_runs,
        ]
    }
    (checkout / "deployments" / "registry.yaml").write_text(registry_yaml(registry))
    layer.automates("up")
    try:
        yield layer
    finally:
        layer.kill_leftover_commands()
        subprocess.run(
            [sys.executable, "-m", "automates.cli", "down"],
            env=layer.env,
            cwd=REPO,
            capture_output=True,
            timeout=120,
            check=False,
        )


def _hanging_task_run(layer: Layer) -> tuple[UUID, Path]:
    """An agent task run whose (fake) LLM CLI hangs, running on the dispatcher: its flow run
    id, and the file naming the CLI's process group."""
    from automates.settings import Settings
    from automates.settings.groups import ServerSettings
    from tests.fixtures.task_runs import fake_cli

    settings = Settings(
        project_root=layer.root / "checkout",
        data_dir=layer.data,
        server=ServerSettings(port=layer.port),
    )
    pids = layer.root / "cli.pids"
    fake_cli(settings, layer.root, "hang", FAKE_CLAUDE_PIDS=str(pids))
    started = layer.automates(
        "task-run", "start", "--codename", "fault", "--agent", "atlas", "--template", "audit",
        "--prompt", "Hang until killed.", "--timeout", "900",
    )  # fmt: skip

    def running() -> Any:
        row = layer.automates("task-run", "show", started["id"])
        return row if row["status"] == "running" and row["flow_run_id"] and pids.exists() else None

    return UUID(wait_for(running, 120, "the task run's CLI to be running")["flow_run_id"]), pids


def test_worker_dispatcher_and_database_killed_while_runs_are_in_flight(layer: Layer) -> None:
    # One wait for Prefect's heartbeat window covers both killed runs.
    held = layer.start_run("script/long")
    agent_run, cli_pids = _hanging_task_run(layer)
    wait_for(lambda: layer.starts()[str(held)], 120, "the long run's command to start")
    down = {name: layer.pid_of(name) for name in ("worker-local", "worker-agents")}
    os.killpg(os.getpgid(down["worker-local"]), signal.SIGKILL)  # worker and its runs
    # The dispatcher dies hard; its CLI (its own process group) with it.
    os.killpg(os.getpgid(down["worker-agents"]), signal.SIGKILL)
    for pid in map(int, cli_pids.read_text().split()):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    submitted = [layer.start_run("script/short") for _ in range(6)]
    down["embedded-postgresql"] = layer.pid_of("embedded-postgresql")  # the postmaster
    os.kill(down["embedded-postgresql"], signal.SIGKILL)  # while runs are taken and submitted

    status = layer.recovered(down)  # by supervision: nobody runs `up`
    assert all(status["components"][name]["restarts"] >= 1 for name in down), status

    runs = [held, agent_run, *submitted]
    found = layer.settle(runs)
    for killed in (found[held], found[agent_run]):
        assert killed.state is not None and killed.state_name == "Crashed", killed.state
        assert "no heartbeat" in (killed.state.message or "")
    for run in submitted:
        state = found[run].state
        assert state is not None
        assert state.is_completed() or "never started" in (state.message or ""), state
    assert all(count <= 1 for count in layer.starts().values()), layer.starts()


def test_server_killed_while_a_run_is_running(layer: Layer) -> None:
    run = layer.start_run("script/short")
    line = wait_for(
        lambda: (
            next(
                (x for x in layer.started.read_text().splitlines() if x.startswith(str(run))), None
            )
            if layer.started.exists()
            else None
        ),
        120,
        "the short run's command to start",
    )
    server = layer.pid_of("prefect-server")
    os.killpg(os.getpgid(server), signal.SIGKILL)
    command = int(line.split()[1])

    def command_ended() -> bool:
        try:
            os.kill(command, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(command_ended, 120, "the run's command to end")
    status = layer.recovered({"prefect-server": server})  # by supervision: nobody runs `up`
    assert status["components"]["prefect-server"]["restarts"] == 1

    found = layer.settle([run])
    assert _final(found[run])
    assert layer.starts()[str(run)] == 1
