"""`automates doctor` against a real layer (the session's Prefect server, a real process worker,
the registry synced into the session's store), healthy and with each fault injected: a worker
stopped, a store not migrated or rolled back, a server down, an alert route unreachable."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from typer.testing import CliRunner

from automates.cli.app import app
from automates.platform import components
from automates.settings import Settings
from automates.store.engine import _alembic_config, head_revision, make_engine, migrate
from tests.conftest import free_port
from tests.fixtures.projects import Project, automate
from tests.fixtures.servers import cli_env, layer_settings, wait_for

DEADLINE = 120.0  # a worker's start and first heartbeat, or its heartbeats' end, on 2 cores
NAMES = ["server", "scheduler", "workers", "store", "blocks", "routes"]
HOOK = "DOCTOR_TEST_HOOK_URL"


@pytest.fixture(autouse=True)
def quick_worker_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers started by this module's tests beat every 5 s, so a stopped one is seen as
    gone after 15 s (three missed beats) instead of 90."""
    monkeypatch.setenv("PREFECT_WORKER_HEARTBEAT_SECONDS", "5")


@pytest.fixture
def listening() -> Iterator[int]:
    """A port on which something accepts TCP connections (an alert receiver, as far as
    reachability goes)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


@pytest.fixture
def layer(server: Settings, project: Project, worker: str) -> Settings:
    """The layer: one scheduled automate synced to the server and the store, served by a live
    process worker on its pool; a webhook route declared (its URL from HOOK)."""
    settings = project.declare_and_sync(server, automate("doctor-probe"), work_pool=worker)
    project.declare_routes(
        {
            "routes": [{"name": "ops-hook", "channel": "webhook", "url": {"env": HOOK}}],
            "alerts": {"default": ["ops-hook"]},
        }
    )
    return settings


def doctor(env: dict[str, str], *args: str) -> tuple[int, str]:
    """`automates doctor ARGS` in-process: its exit code (0 or 1) and its output."""
    done = CliRunner().invoke(app, ["doctor", *args], env={**env, "COLUMNS": "250"})
    assert done.exit_code in (0, 1), (done.exit_code, done.output)
    return done.exit_code, done.stdout


def checks(env: dict[str, str]) -> dict[str, Any]:
    code, out = doctor(env, "--json")
    found = json.loads(out)
    assert [c["name"] for c in found] == NAMES
    assert code == (1 if any(c["ok"] is False for c in found) else 0), found
    return {c["name"]: c for c in found}


def checks_when(env: dict[str, str], condition: Callable[[dict[str, Any]], bool], what: str) -> Any:
    return wait_for(lambda: (found := checks(env)) and condition(found) and found, DEADLINE, what)


def all_ok(found: dict[str, Any]) -> bool:
    return all(c["ok"] is True for c in found.values())


def scheduled(found: dict[str, Any]) -> bool:
    """Every check passes, the scheduler's for the deployment's runs, not for its grace (a
    deployment synced less than GRACE ago passes before the scheduler's first loop)."""
    return all_ok(found) and "may not be scheduled yet" not in found["scheduler"]["detail"]


def test_a_healthy_layer_is_all_ok(layer: Settings, worker: str, listening: int) -> None:
    env = {**cli_env(layer), HOOK: f"https://127.0.0.1:{listening}/hooks/T0/B0/s3cretT0ken"}
    # The worker's first heartbeat, and the scheduler's first runs, come within seconds.
    found = checks_when(env, scheduled, "every check to pass, the deployment scheduled")
    assert found["server"]["detail"] == f"the Prefect API at {layer.api_url} is ready"
    assert found["scheduler"]["detail"] == "1 scheduled deployment, each with a future run"
    assert repr(worker) in found["workers"]["detail"]
    assert found["store"]["detail"].startswith(f"migrated to {head_revision()}")
    assert found["blocks"]["detail"].endswith("present")
    assert found["routes"]["detail"] == f"reachable: ops-hook (127.0.0.1:{listening})"

    code, text = doctor(env)
    assert code == 0
    lines = text.splitlines()
    assert [line.split()[:2] for line in lines] == [[name, "ok:"] for name in NAMES]
    assert "s3cret" not in text and "hooks/T0" not in text


def test_a_stopped_worker_is_named_with_its_pool_and_fix(
    layer: Settings, worker: str, listening: int
) -> None:
    env = {**cli_env(layer), HOOK: f"http://127.0.0.1:{listening}/"}
    # Scheduled, not only within the scheduler check's grace: the grace may end before the
    # stopped worker is seen, and only the workers' check may fail then.
    checks_when(env, scheduled, "every check to pass, the deployment scheduled")

    components.worker(layer, worker).stop()
    found = checks_when(
        env, lambda f: f["workers"]["ok"] is False, "the stopped worker to be reported"
    )
    workers = found["workers"]
    assert workers["detail"].startswith(
        f"work pool {worker!r} has no live worker (it serves 'doctor-probe')"
    )
    assert workers["fix"].startswith("`automates up` starts its worker")  # the layer's own pool
    assert [name for name, c in found.items() if c["ok"] is not True] == ["workers"]

    code, text = doctor(env)
    assert code == 1
    assert f"workers    problem: work pool {worker!r} has no live worker" in text
    assert "           fix: `automates up` starts its worker" in text


def test_a_store_not_migrated_then_rolled_back_then_migrated(
    server: Settings, scratch_database: str
) -> None:
    env = cli_env(layer_settings(server, database_url=scratch_database))

    fresh = checks(env)
    assert fresh["server"]["ok"] is True
    store = fresh["store"]
    assert store["ok"] is False
    assert "is not migrated (no schema version" in store["detail"]
    assert store["fix"] == "`automates up` (or `automates sync`) migrates it"

    engine = make_engine(scratch_database)
    try:
        head = migrate(engine)
        with engine.begin() as connection:
            command.downgrade(_alembic_config(connection), "-1")
        behind = checks(env)["store"]
        assert behind["ok"] is False
        assert behind["detail"].endswith(f"behind this code's {head}")
        assert behind["fix"] == store["fix"]

        migrate(engine)  # what the fix runs
    finally:
        engine.dispose()
    assert checks(env)["store"]["ok"] is True


def test_a_server_down_and_an_unreachable_route(
    server: Settings, project: Project, tmp_path: Path
) -> None:
    closed = free_port()  # nothing listens there
    project.declare_routes(
        {"routes": [{"name": "pager", "channel": "webhook", "url": {"env": HOOK}}]}
    )
    settings = project.settings(server, data_dir=tmp_path / "data")
    env = {
        **cli_env(settings),
        "AUTOMATES_SERVER_PORT": str(free_port()),  # a server of its own that is not running
        HOOK: f"http://alice:pa55word@127.0.0.1:{closed}/hooks/s3cretT0ken",
    }
    del env["AUTOMATES_PREFECT_API_URL"]

    found = checks(env)
    assert found["server"]["ok"] is False
    assert "is unreachable" in found["server"]["detail"]
    assert found["server"]["fix"].startswith("`automates up`")
    for name in ("scheduler", "workers", "blocks"):
        assert found[name]["ok"] is None, found[name]
    assert found["store"]["ok"] is True  # the store is the session's, migrated
    route = found["routes"]
    assert route["ok"] is False
    assert route["detail"].startswith(f"route 'pager' (webhook): 127.0.0.1:{closed} is unreachable")
    assert "`automates alerts test pager`" in route["fix"]

    code, text = doctor(env)
    assert code == 1
    assert "server     problem:" in text and "scheduler  not checked:" in text
    for secret in ("pa55word", "s3cret", "alice"):
        assert secret not in text
