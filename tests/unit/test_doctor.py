"""`automates doctor`'s checks, each a pure function of facts; and how the command prints them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from automates.alerts.routes import Route
from automates.cli import doctor_cmds
from automates.cli.app import app
from automates.platform.doctor_checks import (
    GRACE,
    Check,
    Facts,
    RouteProbe,
    ScheduledDeployment,
    StoreFacts,
    check_blocks,
    check_routes,
    check_scheduler,
    check_server,
    check_store,
    check_workers,
    route_address,
    run_checks,
    without_credentials,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HEAD = "0017"
MIGRATED = StoreFacts("postgresql://app:***@db/automates", HEAD, HEAD, frozenset({"0016", HEAD}))


def facts(**changes: Any) -> Facts:
    """A healthy layer's facts, `changes` applied."""
    base = Facts(
        api_url="http://127.0.0.1:4200/api",
        external_api=False,
        api_ready=True,
        api_detail="ready",
        layer_pools=frozenset({"local", "agents", "warm"}),
        browser_pool="residential",
        store=MIGRATED,
        deployments=[ScheduledDeployment("nightly", True, True, NOW - timedelta(days=1))],
        pools={"local": ["nightly"]},
        workers={"local": {"live": True, "workers": []}},
        components={"worker-local": {"state": "running"}},
        expected_blocks=[("sqlalchemy-connector", "automates-store")],
        present_blocks={("sqlalchemy-connector", "automates-store")},
    )
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def test_a_healthy_layer_passes_every_check() -> None:
    checks = run_checks(facts(), NOW)
    assert [c.name for c in checks] == [
        "server",
        "scheduler",
        "workers",
        "store",
        "blocks",
        "routes",
    ]
    assert all(c.ok for c in checks), checks
    assert all(c.fix is None for c in checks)
    assert check_routes(facts()).detail.endswith("skipped")  # only the journal: nothing to reach


def test_a_server_that_does_not_answer_leaves_its_checks_unchecked() -> None:
    down = facts(api_ready=False, api_detail="unreachable (ConnectError)")
    server = check_server(down)
    assert server.ok is False
    assert (
        server.detail
        == "the Prefect API at http://127.0.0.1:4200/api is unreachable (ConnectError)"
    )
    assert server.fix is not None and server.fix.startswith("`automates up`")
    for check in (check_scheduler(down, NOW), check_workers(down), check_blocks(down)):
        assert check.ok is None and check.status == "not checked" and check.fix is None
    assert check_store(down.store).ok  # the store does not need the server

    external = check_server(facts(api_ready=False, api_detail="unreachable", external_api=True))
    assert external.fix is not None and "AUTOMATES_PREFECT_API_URL" in external.fix


def test_the_scheduler_check_names_each_scheduled_deployment_without_a_future_run() -> None:
    old = NOW - timedelta(hours=2)
    found = facts(
        deployments=[
            ScheduledDeployment("served", True, True, old),
            ScheduledDeployment("stuck-a", True, False, old),
            ScheduledDeployment("stuck-b", True, False, old),
            ScheduledDeployment("paused", False, False, old),  # nothing expected of it
        ]
    )
    check = check_scheduler(found, NOW)
    assert check.ok is False
    assert "2 deployments with an active schedule have no future Scheduled run" in check.detail
    assert "'stuck-a', 'stuck-b'" in check.detail and "'paused'" not in check.detail
    assert check.fix is not None and "automates up" in check.fix


def test_a_deployment_changed_moments_ago_is_not_yet_a_scheduler_problem() -> None:
    fresh = NOW - GRACE / 2
    found = facts(deployments=[ScheduledDeployment("new", True, False, fresh)])
    check = check_scheduler(found, NOW)
    assert check.ok is True and "'new' changed less than 60 s ago" in check.detail
    later = check_scheduler(found, fresh + GRACE + timedelta(seconds=1))
    assert later.ok is False and "'new'" in later.detail


def test_no_schedule_no_scheduler_problem_and_a_failed_read_is_one() -> None:
    idle = facts(deployments=[ScheduledDeployment("manual", False, False, NOW)])
    assert check_scheduler(idle, NOW).ok is True
    unread = check_scheduler(facts(deployments=None, server_error="timed out"), NOW)
    assert unread.ok is False and "timed out" in unread.detail


def test_each_pool_with_deployments_needs_a_live_worker_and_its_fix_depends_on_the_pool() -> None:
    found = facts(
        pools={
            "local": ["nightly"],
            "residential": ["snapshot"],
            "far": ["remote-job"],
            "warm": ["quick"],
        },
        workers={
            "local": {"live": False, "workers": []},
            "warm": {"live": True, "workers": []},
            "far": {"live": False, "workers": []},
        },
        components={"worker-local": {"state": "stopped"}},
    )
    check = check_workers(found)
    assert check.ok is False
    assert check.detail == (
        "work pool 'far' has no live worker (it serves 'remote-job'); "
        "work pool 'local' has no live worker (it serves 'nightly'); worker-local is stopped; "
        "work pool 'residential' has no live worker (it serves 'snapshot')"
    )
    assert check.fix is not None
    assert "`workers/start-remote-worker ENV_FILE` with AUTOMATES_WORK_POOL=far" in check.fix
    assert "`automates up` starts its worker" in check.fix
    assert "`workers/residential-worker ENV_FILE`" in check.fix
    assert "'warm'" not in check.detail

    assert check_workers(facts(pools={})).ok is True
    unread = check_workers(facts(workers_error="cannot read the work pools (500)"))
    assert unread.ok is False and "500" in unread.detail


def test_the_store_must_be_at_this_checkouts_head() -> None:
    where = MIGRATED.where
    assert check_store(MIGRATED).ok is True

    fresh = check_store(StoreFacts(where, None, HEAD, MIGRATED.known))
    assert fresh.ok is False and "is not migrated" in fresh.detail
    assert fresh.fix == "`automates up` (or `automates sync`) migrates it"

    behind = check_store(StoreFacts(where, "0016", HEAD, MIGRATED.known))
    assert behind.ok is False and "at revision 0016, behind this code's 0017" in behind.detail
    assert behind.fix == fresh.fix

    ahead = check_store(StoreFacts(where, "0099", HEAD, MIGRATED.known))
    assert ahead.ok is False and "does not know" in ahead.detail
    assert ahead.fix is not None and "git pull" in ahead.fix

    down = check_store(StoreFacts(where, head=HEAD, error="cannot reach the store", embedded=False))
    assert down.ok is False and down.detail == "cannot reach the store"
    assert down.fix is not None and "AUTOMATES_DATABASE_URL" in down.fix
    embedded = check_store(StoreFacts("the embedded PostgreSQL", head=HEAD, error="not running"))
    assert embedded.fix == "`automates up` starts the embedded PostgreSQL"


def test_missing_blocks_are_named_and_sync_saves_them() -> None:
    expected = [
        ("sqlalchemy-connector", "automates-store"),
        ("automates-llm-cli", "claude"),
        ("automates-permission-template", "audit"),
    ]
    check = check_blocks(
        facts(expected_blocks=expected, present_blocks={("automates-llm-cli", "claude")})
    )
    assert check.ok is False
    assert check.detail == (
        "missing on the server: 'sqlalchemy-connector/automates-store', "
        "'automates-permission-template/audit'"
    )
    assert check.fix == "`automates sync` saves them"
    assert check_blocks(facts(expected_blocks=expected, present_blocks=set(expected))).ok is True


def test_routes_name_the_unreachable_one_and_never_its_url() -> None:
    probes = [
        RouteProbe("ops", "slack", "hooks.slack.com:443"),
        RouteProbe(
            "pager",
            "webhook",
            "127.0.0.1:9",
            error="127.0.0.1:9 is unreachable (Connect call failed)",
            fix="check 127.0.0.1's address and the network from this host, then "
            "`automates alerts test pager`",
        ),
    ]
    check = check_routes(facts(routes=probes))
    assert check.ok is False
    assert (
        check.detail == "route 'pager' (webhook): 127.0.0.1:9 is unreachable (Connect call failed)"
    )
    assert check.fix is not None and "`automates alerts test pager`" in check.fix

    reached = check_routes(facts(routes=probes[:1]))
    assert reached.ok is True and reached.detail == "reachable: ops (hooks.slack.com:443)"

    blocked = check_routes(facts(routes=[RouteProbe("vault", "slack", checked=False)]))
    assert blocked.ok is None and "vault" in blocked.detail

    broken = check_routes(facts(routes_error="routes.yaml: routes.0.channel: not a channel"))
    assert broken.ok is False and broken.fix is not None and "automates sync" in broken.fix


def test_a_routes_address_is_its_host_and_port_only() -> None:
    secret = "https://hooks.example.org/services/T000/B000/XXXXSECRETXXXX"
    hook = Route.model_validate({"name": "ops", "channel": "webhook", "url": {"env": "HOOK"}})
    assert route_address(hook, {"url": secret}) == ("hooks.example.org", 443)
    assert route_address(hook, {"url": "http://user:pw@10.0.0.5:8080/x"}) == ("10.0.0.5", 8080)
    with pytest.raises(ValueError, match="not an http"):
        route_address(hook, {"url": "ftp://example.org"})
    mail = Route.model_validate(
        {
            "name": "mail",
            "channel": "email",
            "host": "smtp.example.org",
            "port": 465,
            "sender": "layer@example.org",
            "to": ["ops@example.org"],
        }
    )
    assert route_address(mail, {}) == ("smtp.example.org", 465)
    assert without_credentials("http://admin:pw@h:4200/api") == "http://h:4200/api"


CHECKS = [
    Check("server", True, "the Prefect API at http://127.0.0.1:4200/api is ready"),
    Check(
        "store",
        False,
        "cannot reach the store at postgresql://app:hunter22@db/automates",
        "`automates up`",
    ),
    Check("blocks", None, "the Prefect API does not answer (see server)"),
]


def test_the_command_prints_one_line_per_check_and_exits_1_on_a_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(doctor_cmds, "run_doctor", lambda settings: CHECKS)
    done = CliRunner().invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert done.exit_code == 1, done.output
    lines = done.stdout.splitlines()
    assert lines[0] == "server  ok: the Prefect API at http://127.0.0.1:4200/api is ready"
    assert (
        lines[1] == "store   problem: cannot reach the store at postgresql://app:***@db/automates"
    )
    assert lines[2] == "        fix: `automates up`"
    assert lines[3] == "blocks  not checked: the Prefect API does not answer (see server)"
    assert "hunter22" not in done.stdout

    done = CliRunner().invoke(app, ["doctor", "--json"])
    assert done.exit_code == 1
    assert json.loads(done.stdout) == [
        {"name": "server", "ok": True, "detail": CHECKS[0].detail, "fix": None},
        {
            "name": "store",
            "ok": False,
            "detail": "cannot reach the store at postgresql://app:***@db/automates",
            "fix": "`automates up`",
        },
        {"name": "blocks", "ok": None, "detail": CHECKS[2].detail, "fix": None},
    ]


def test_the_command_exits_0_when_all_is_well_and_2_on_bad_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(doctor_cmds, "run_doctor", lambda settings: CHECKS[:1])
    assert CliRunner().invoke(app, ["doctor"]).exit_code == 0
    done = CliRunner().invoke(app, ["doctor"], env={"AUTOMATES_SERVER_PORT": "not-a-port"})
    assert done.exit_code == 2
    assert "AUTOMATES_SERVER_PORT" in done.stderr
    done = CliRunner().invoke(app, ["doctor", "--json"], env={"AUTOMATES_NO_SUCH": "1"})
    assert done.exit_code == 2 and "error" in json.loads(done.stdout)
