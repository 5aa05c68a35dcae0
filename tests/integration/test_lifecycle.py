"""The README's first command, as a user runs it: `automates up` on embedded defaults.

No database URL is given: the embedded PostgreSQL starts from the wheel in the data folder,
the Prefect server runs on it, the registry is synced and a worker serves it. `up` is safe to
run twice, `down` stops everything, and the data survives into the next `up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import psutil
from sqlalchemy import text

from automates.server.client import prefect_client
from automates.store.engine import make_engine
from tests.conftest import REPO, free_port, shipped_registry
from tests.fixtures.commands import invoke_json, status_report
from tests.fixtures.projects import TEMPLATE, automate, registry_yaml
from tests.fixtures.servers import wait_for


def automates(env: dict[str, str], *args: str, expect: int | None = 0) -> Any:
    """The CLI's `--json` output; its exit status must be `expect` (None: 0 or 1)."""
    done = subprocess.run(
        [sys.executable, "-m", "automates.cli", *args, "--json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    allowed = (0, 1) if expect is None else (expect,)
    assert done.returncode in allowed, done.stdout + done.stderr
    return json.loads(done.stdout)


def _status_when(env: dict[str, str], condition: Callable[[Any], bool]) -> Any:
    """`automates status`'s report once `condition` holds of it, within 90 s; the last report
    if it never does. Polled in this process: a poll through the CLI would start an interpreter
    each time, and on two cores that start-up slows the very restarts being waited for (the
    CLI's own report is checked by the calls to `automates status` around each wait)."""
    deadline = time.monotonic() + 90
    while True:
        report = status_report(env)
        if condition(report) or time.monotonic() > deadline:
            return report
        time.sleep(0.2)


def _state_of(run_id: str, api_url: str) -> str | None:
    async def read() -> str | None:
        async with prefect_client(api_url) as client:
            return (await client.read_flow_run(UUID(run_id))).state_name

    return asyncio.run(read())


def test_up_twice_run_down_up_again(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "AUTOMATES_DATA_DIR": str(tmp_path / "data"),
        "AUTOMATES_SERVER_PORT": str(port),
    }
    env.pop("AUTOMATES_DATABASE_URL", None)
    try:
        first = automates(env, "up")
        layer = ["embedded-postgresql", "prefect-server", "worker-local", "worker-agents", "alerts"]
        assert first["started"] == ["supervisord", *layer]
        assert first["ui_url"] == f"http://127.0.0.1:{port}"
        assert "host=" in first["database"]  # the Unix socket of the embedded server
        assert len(first["sync"]["created"]) == len(shipped_registry().deployable)

        second = automates(env, "up")
        assert second["started"] == []
        assert second["reused"] == ["supervisord", *layer]
        assert second["sync"]["server_writes"] == 0

        status = automates(env, "status")
        assert status["ok"] and status["api_ready"] and status["problems"] == []
        assert list(status["components"]) == ["supervisord", *layer]
        for name, entry in status["components"].items():
            assert entry["state"] == "running" and entry["pid"] > 0, name
            assert entry["restarts"] == 0 and entry["crash_loop"] is None, name
            if name != "supervisord":
                assert entry["uptime_seconds"] >= 0, name

        # The agent dispatcher serves agent task runs; sync saved the templates and the CLI block.
        task_run = automates(
            env, "task-run", "start", "--codename", "smoke", "--agent", "atlas", "--template",
            "audit", "--prompt", "Check the layer.", "--dry-run", "--wait",
        )  # fmt: skip
        assert task_run["status"] == "completed" and task_run["started_at"] is None
        assert "--permission-mode" in task_run["command"]

        prefect = str(Path(sys.executable).with_name("prefect"))
        ran = subprocess.run(
            [prefect, "deployment", "run", "disk-space-check/disk-space-check", "--watch"],
            env={**env, "PREFECT_API_URL": first["api_url"]},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "Completed" in ran.stdout
        [run_id] = re.findall(r"UUID: ([0-9a-f-]{36})", ran.stdout)

        assert automates(env, "down")["stopped"] == [
            "alerts",
            "worker-agents",
            "worker-local",
            "prefect-server",
            "embedded-postgresql",
            "supervisord",
        ]
        stopped = automates(env, "status", expect=1)  # the layer does not serve
        assert not stopped["api_ready"]
        assert {e["state"] for e in stopped["components"].values()} == {"stopped"}
        assert automates(env, "down")["stopped"] == []

        again = automates(env, "up")
        assert again["sync"]["created"] == [] and again["sync"]["server_writes"] == 0
        rows = {r["name"]: r for r in automates(env, "list", "--family", "sre")}
        assert rows["disk-space-check"]["runs"] >= 1  # a */15 tick may have added one
        assert _state_of(run_id, again["api_url"]) == "Completed"  # history survived
    finally:
        automates(env, "down")


def test_every_process_killed_comes_back_by_itself_and_a_crash_loop_stops(tmp_path: Path) -> None:
    """On a server bound beyond loopback, with Prefect's basic auth (required there): kill -9
    of each supervised process in turn, and each comes back by itself with a new pid and one
    restart counted, the API serving again after the database's and the server's. Then a
    worker killed again and again is stopped in a crash loop: `status` exits 1 naming it, an
    alert is delivered; `up` starts it again and the alert is resolved."""
    data, auth = tmp_path / "data", f"admin:{uuid4().hex}"
    env = {
        **os.environ,
        "AUTOMATES_DATA_DIR": str(data),
        "AUTOMATES_SERVER_PORT": str(free_port()),
        "AUTOMATES_SERVER_HOST": "0.0.0.0",
        "PREFECT_SERVER_API_AUTH_STRING": auth,
        "PREFECT_API_AUTH_STRING": auth,
        # A crash loop after more than 3 restarts (5 by default): fewer kills to get there.
        "AUTOMATES_CRASH_LOOP_RESTARTS": "3",
    }
    env.pop("AUTOMATES_DATABASE_URL", None)
    try:
        first = automates(env, "up")  # sync, worker and dispatcher all pass the auth
        api = first["api_url"]
        assert automates(env, "status")["ok"]
        # The store block's password is for holders of the auth string only.
        anyone = httpx.post(f"{api}/block_documents/filter", json={"include_secrets": True})
        assert anyone.status_code == 401
        holder = httpx.post(
            f"{api}/block_documents/filter",
            json={"include_secrets": True},
            auth=tuple(auth.split(":", 1)),  # type: ignore[arg-type]
        )
        assert holder.status_code == 200

        # The database last: without it the others may exit and be restarted too.
        for name in ["alerts", "worker-agents", "worker-local", "prefect-server"]:
            _kill_and_see_it_back(env, name)
        postmaster = _kill_and_see_it_back(env, "embedded-postgresql", group=False)
        assert int((data / "pg" / "postmaster.pid").read_text().split()[0]) == postmaster

        text = subprocess.run(
            [sys.executable, "-m", "automates.cli", "status"],
            env={**env, "COLUMNS": "200"}, cwd=REPO, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert text.returncode == 0, text.stdout + text.stderr
        # The text names the count; exactly one per kill was checked above, but the worker may
        # also have exited (and been restarted) while its database was away.
        assert re.search(
            r"worker-local: running \(pid \d+, up \d+m\d+s, \d+ restart\(s\)", text.stdout
        )

        # Killed until it is more than 3 restarts within 10 minutes: stopped, not restarted.
        for _ in range(10):
            report = status_report(env)
            entry = report["components"]["worker-local"]
            if entry["state"] == "crash-loop":
                break
            _kill_group(entry["pid"])
            _status_when(env, partial(_back_or_stopped, old=entry["pid"]))
        assert entry["state"] == "crash-loop", report
        report = automates(env, "status", expect=1)  # and the CLI says so (exit 1: not ok)
        entry = report["components"]["worker-local"]
        assert entry["state"] == "crash-loop", report
        # 4 restarts within the window: ours, plus any the database's restart caused (a worker
        # may exit while its database is away, and is restarted too).
        assert entry["restarts"] >= 4 and entry["pid"] is None
        assert re.search(r"was restarted ([4-9]|\d\d) times within 600 s", entry["crash_loop"])
        assert not report["ok"]
        [problem] = report["problems"]
        assert problem.startswith("worker-local is stopped in a crash loop")
        assert str(data / "run" / "worker-local.log") in problem
        sent = _alert_delivered(env, "component_crash_loop")
        assert sent["title"] == "worker-local is in a crash loop and was stopped"

        again = automates(env, "up", "--no-sync")  # the repair needs no sync
        assert again["started"] == ["worker-local"], again
        _status_when(env, lambda r: r["ok"])
        status = automates(env, "status")
        assert status["components"]["worker-local"]["crash_loop"] is None
        _alert_delivered(env, "component_recovered")

        # supervisord itself killed: its programs run on, unwatched; `status` says so, and
        # `up` stops those orphans (by pid and start time) and starts everything afresh.
        orphans = {n: e["pid"] for n, e in status["components"].items() if n != "supervisord"}
        os.kill(status["components"]["supervisord"]["pid"], signal.SIGKILL)
        _status_when(env, lambda r: r["components"]["supervisord"]["state"] == "dead")
        report = automates(env, "status", expect=1)
        assert (
            "supervisord is dead (its process is gone): `automates up` restarts it"
            in (report["problems"])
        )
        fresh = automates(env, "up", "--no-sync")
        assert fresh["started"] == ["supervisord", *orphans], fresh
        assert not any(psutil.pid_exists(pid) for pid in orphans.values()), orphans
        assert _status_when(env, lambda r: r["ok"])["ok"]
    finally:
        automates(env, "down")


def _pid_of(env: dict[str, str], name: str) -> int:
    pid = status_report(env)["components"][name]["pid"]
    assert pid, name
    return int(pid)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)


def _kill_and_see_it_back(env: dict[str, str], name: str, group: bool = True) -> int:
    """kill -9 the program (with its process group: a worker and its runs); wait until it runs
    again with a new pid, one restart counted, and the whole layer is ok; its new pid."""
    before = _pid_of(env, name)
    if group:
        _kill_group(before)
    else:
        os.kill(before, signal.SIGKILL)

    def back(report: Any) -> bool:
        entry = report["components"][name]
        return bool(report["ok"] and entry["state"] == "running" and entry["pid"] != before)

    _status_when(env, back)
    report = automates(env, "status")  # and the CLI says so (exit 0: all is well)
    entry = report["components"][name]
    assert back(report), (name, report["problems"], report["components"])
    assert entry["restarts"] == 1, (name, report["components"])
    return int(entry["pid"])


def _back_or_stopped(report: Any, old: int) -> bool:
    entry = report["components"]["worker-local"]
    running_again = entry["state"] == "running" and entry["pid"] not in (None, old)
    return running_again or entry["state"] == "crash-loop"


def _alert_delivered(env: dict[str, str], kind: str) -> Any:
    """The alert's delivery to the built-in journal route, once sent (within 90 s)."""

    def sent() -> Any:  # in-process: a poll costs no interpreter start-up
        rows = [r for r in invoke_json(env, "alerts", "list") if r["kind"] == kind]
        return rows[0] if rows and rows[0]["status"] == "sent" else None

    return wait_for(sent, 90, f"a {kind} alert sent to the journal route")


def test_a_process_that_cannot_start_ends_in_a_crash_loop_with_an_alert(
    tmp_path: Path, scratch_database: str
) -> None:
    """A webhook port another program holds is refused before anything starts. Taken while
    the layer runs (the webhook killed, its port grabbed before it is back): every restart
    fails, and the webhook ends in a crash loop with an alert, not an endless restart; `up`
    with the port free again repairs it."""
    checkout = tmp_path / "checkout"
    shutil.copytree(TEMPLATE, checkout)
    (checkout / "deployments").mkdir()
    hook = automate("hooked", kind="oneshot", schedules=[], webhook=True)
    (checkout / "deployments" / "registry.yaml").write_text(registry_yaml({"automates": [hook]}))
    port = free_port()
    env = {
        **os.environ,
        "AUTOMATES_PROJECT_ROOT": str(checkout),
        "AUTOMATES_DATA_DIR": str(tmp_path / "data"),
        "AUTOMATES_SERVER_PORT": str(free_port()),
        "AUTOMATES_DATABASE_URL": scratch_database,
        "AUTOMATES_WEBHOOK_PORT": str(port),
        "AUTOMATES_CRASH_LOOP_RESTARTS": "2",
    }
    taken = _listen(port)
    try:
        refused = automates(env, "up", expect=2)["error"]
        assert f"port {port}" in refused and "AUTOMATES_WEBHOOK_PORT" in refused, refused
        assert not (tmp_path / "data" / "run" / "supervisord.conf").exists()
        taken.close()

        first = automates(env, "up")
        assert "webhook" in first["started"], first
        webhook = automates(env, "status")["components"]["webhook"]["pid"]
        os.kill(webhook, signal.SIGKILL)
        taken = _listen(port)  # before the restarted webhook has imported enough to bind
        _status_when(env, lambda r: r["components"]["webhook"]["state"] == "crash-loop")
        report = automates(env, "status", expect=1)
        assert not report["ok"] and report["components"]["webhook"]["pid"] is None
        assert any(p.startswith("webhook is stopped in a crash loop") for p in report["problems"])
        assert _alert_kinds(scratch_database, "component_crash_loop:webhook") == [
            "component_crash_loop"
        ]

        taken.close()
        repaired = automates(env, "up", "--no-sync")
        assert repaired["started"] == ["webhook"], repaired
        assert _status_when(env, lambda r: r["ok"])["ok"]
    finally:
        taken.close()
        automates(env, "down")


def _listen(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:port, retried while the port's last owner dies."""
    deadline = time.monotonic() + 10
    while True:
        holder = socket.socket()
        try:
            holder.bind(("127.0.0.1", port))
            holder.listen(1)
            return holder
        except OSError:
            holder.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _alert_kinds(database: str, condition: str) -> list[str]:
    engine = make_engine(database)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT kind FROM automates.alerts WHERE condition = :c ORDER BY id"),
                {"c": condition},
            )
            return list(rows.scalars())
    finally:
        engine.dispose()
