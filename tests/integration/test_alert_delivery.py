"""The alert deliverer against real receivers and a real PostgreSQL: every alert once, in order,
through outages, restarts and bursts; duplicates and floods folded; secrets never shown.

Alerts are raised as the layer raises them (`raise_alert` in a transaction); the deliverer runs
as in `automates up` (a thread here, or the `python -m automates.alerts` process where a test
kills it). The HTTP sink stands in for the webhook's receiver, aiosmtpd for the mail server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from automates.alerts import catalog
from automates.alerts.outbox import Alert, raise_alert
from automates.alerts.routes import Routing
from automates.registry.alert_kinds import AlertKind
from automates.registry.loader import parse_registry
from automates.settings import Settings
from automates.settings.groups import AlertSettings
from automates.store.alerts import save_routing
from automates.store.engine import make_engine, migrate, transaction
from automates.store.registry import upsert_automates
from tests.conftest import REPO
from tests.fixtures.commands import invoke_json
from tests.fixtures.deliverer import delivering
from tests.fixtures.projects import automate
from tests.fixtures.receivers import (
    HttpSink,
    ReceivedRequest,
    Reply,
    SmtpSink,
    http_sink,
    smtp_sink,
)
from tests.fixtures.servers import wait_for

__all__ = ["http_sink", "smtp_sink"]  # fixtures

TOKEN = "s3cretHookT0ken"


@pytest.fixture
def engine(scratch_database: str) -> Iterator[Engine]:
    engine = make_engine(scratch_database)
    migrate(engine)
    yield engine
    engine.dispose()


def settings_for(database: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database,
        "alert": AlertSettings(
            poll_seconds=0.2,
            retry_seconds=0.2,
            retry_max_seconds=1.0,
            send_timeout_seconds=10.0,
            **overrides,
        ),
    }
    return Settings(**values)


def hook(sink: HttpSink, monkeypatch: pytest.MonkeyPatch, name: str = "HOOK_URL") -> dict[str, Any]:
    """A webhook route to the sink; its URL (holding a token) in a variable, as in production."""
    monkeypatch.setenv(name, f"{sink.base_url}/hooks/{TOKEN}")
    return {"name": "hook", "channel": "webhook", "url": {"env": name}}


def route_to(engine: Engine, document: dict[str, Any]) -> None:
    """What `automates sync` saves of the routes file."""
    routing = Routing.model_validate(document)
    with transaction(engine) as connection:
        save_routing(connection, routing.model_dump(mode="json"))


def raise_all(engine: Engine, *alerts: Alert) -> list[int]:
    with transaction(engine) as connection:
        return [raise_alert(connection, alert) or 0 for alert in alerts]


def deliveries(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT d.*, a.kind, a.title FROM automates.alert_deliveries d "
                "JOIN automates.alerts a ON a.id = d.alert_id ORDER BY d.id"
            )
        )
        return [dict(row._mapping) for row in rows]


def settled(engine: Engine, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    """The deliveries, once there are `count` and none is open."""

    def done() -> list[dict[str, Any]] | None:
        rows = deliveries(engine)
        closed = all(r["status"] not in ("pending", "sending") for r in rows)
        return rows if len(rows) >= count and closed else None

    return wait_for(done, timeout, f"{count} settled deliveries")


def missed(automate_name: str, tick: str) -> Alert:
    return catalog.missed_ticks(automate_name, "hourly", [tick], "no run started")


def alert_ids(requests: list[ReceivedRequest]) -> list[int]:
    return [int(r.json()["alert_id"]) for r in requests]


def test_a_route_down_for_a_while_gets_every_alert_once_in_order(
    engine: Engine, scratch_database: str, http_sink: HttpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    route_to(engine, {"routes": [hook(http_sink, monkeypatch)], "alerts": {"default": ["hook"]}})
    answers: list[tuple[int, int]] = []
    healthy = threading.Event()

    def answer(request: ReceivedRequest) -> Reply:
        reply = Reply() if healthy.is_set() else Reply(500, b"down")
        answers.append((int(request.json()["alert_id"]), reply.status))
        return reply

    http_sink.answer_with(answer)
    ids = raise_all(engine, *(missed(f"job-{n}", "2026-12-04T03:00:00Z") for n in range(8)))
    settings = settings_for(scratch_database, max_attempts=100)
    with delivering(settings, engine):
        http_sink.wait_for(4)  # the first alert, failing, retried with backoff
        healthy.set()
        rows = settled(engine, len(ids))
    assert [r["status"] for r in rows] == ["sent"] * len(ids)
    accepted = [alert for alert, status in answers if status == 200]
    assert accepted == ids  # each once, in the order raised
    refused = {alert for alert, status in answers if status == 500}
    assert refused == {ids[0]}  # nothing overtook the alert at the head of the line
    assert rows[0]["attempts"] > 1 and all(r["attempts"] == 1 for r in rows[1:])
    first = http_sink.requests[0]
    assert first.header("Idempotency-Key") == f"automates-alert-{ids[0]}-hook"
    assert {
        r.header("Idempotency-Key")
        for r in http_sink.requests
        if r.json()["alert_id"] == str(ids[0])
    } == {first.header("Idempotency-Key")}


def test_identical_alerts_become_one_then_one_resolution(
    engine: Engine, scratch_database: str, http_sink: HttpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    route_to(engine, {"routes": [hook(http_sink, monkeypatch)], "alerts": {"default": ["hook"]}})
    ticks = [f"2026-12-0{1 + n // 24}T{n % 24:02d}:00:00Z" for n in range(50)]
    raise_all(engine, *(missed("nightly", tick) for tick in ticks))
    with delivering(settings_for(scratch_database), engine):
        rows = settled(engine, 50)
        [received] = http_sink.wait_for(1)
        assert "nightly: missed tick" in received.json()["title"]
        statuses = Counter(r["status"] for r in rows)
        assert statuses == {"sent": 1, "suppressed": 49}
        assert all(
            r["reason"].startswith(f"duplicate of alert #{rows[0]['alert_id']}") for r in rows[1:]
        )
        # A good run ends the condition: one resolution, where the alert went.
        raise_all(engine, catalog.tick_recovered("nightly", None))
        settled(engine, 51)
        resolved = http_sink.wait_for(2)[1]
        assert "resolved" in resolved.json()["title"]
        # Nothing was open any more: a second good run raises nothing.
        assert raise_all(engine, catalog.tick_recovered("nightly", None)) == [0]
        # The condition is over: the next miss is news again.
        raise_all(engine, missed("nightly", "2026-12-05T03:00:00Z"))
        settled(engine, 52)
        http_sink.wait_for(3)
    assert len(http_sink.requests) == 3


def test_a_burst_past_the_rate_limit_becomes_one_digest(
    engine: Engine, scratch_database: str, http_sink: HttpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = hook(http_sink, monkeypatch) | {"rate_limit_per_hour": 5, "digest_seconds": 10}
    route_to(engine, {"routes": [route], "alerts": {"default": ["hook"]}})
    ids = raise_all(engine, *(missed(f"job-{n}", "2026-12-04T03:00:00Z") for n in range(30)))
    with delivering(settings_for(scratch_database), engine):
        received = http_sink.wait_for(6, timeout=90)  # 5 alerts, then the digest
        rows = settled(engine, 31)
    assert alert_ids(received[:5]) == ids[:5]
    digest = received[5].json()
    assert digest["kind"] == "digest" and "25 alerts folded on route hook" in digest["title"]
    assert f"#{ids[5]} missed_tick" in digest["message"]
    statuses = Counter(r["status"] for r in rows)
    assert statuses == {"sent": 6, "digested": 25}
    assert len(http_sink.requests) == 6


def test_outcomes_follow_each_automates_delivery_mode(
    engine: Engine, scratch_database: str, http_sink: HttpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    route_to(engine, {"routes": [hook(http_sink, monkeypatch)], "alerts": {"default": ["hook"]}})
    registry = parse_registry(
        {
            "automates": [
                automate("loud", delivery={"mode": "announce", "routes": ["hook", "hook"]}),
                automate("quiet"),  # the project default: failure_only
                automate("mute", delivery={"mode": "none"}),
                automate("chatty", delivery={"mode": "announce", "unchanged": True}),
            ]
        }
    )
    with transaction(engine) as connection:
        upsert_automates(connection, [(a, "local") for a in registry.automates])
    raise_all(
        engine,
        *filter(
            None,
            [
                catalog.run_outcome("loud", "completed", "3 files exported", None),
                catalog.run_outcome("quiet", "completed", "all good", None),
                catalog.run_outcome("quiet", "findings", "2 certificates expire soon", None),
                catalog.run_outcome("mute", "failed", "exit code 3", None),
                catalog.run_outcome("loud", "skipped", "quiet hours", None),
                # Nothing new: the same summary again is silent, unless `unchanged: true`.
                catalog.run_outcome("loud", "completed", "3 files exported", None),
                catalog.run_outcome("chatty", "completed", "nothing to do", None),
                catalog.run_outcome("chatty", "completed", "nothing to do", None),
            ],
        ),
    )
    with delivering(settings_for(scratch_database), engine):
        rows = settled(engine, 7)
        received = http_sink.wait_for(4)
    assert [r.json()["title"] for r in received] == [
        "[automates] loud completed",
        "[automates] quiet has findings",
        "[automates] chatty completed",
        "[automates] chatty completed",
    ]
    again = [r for r in rows if r["title"] == "loud completed"][1]
    assert again["status"] == "suppressed" and again["reason"].startswith("duplicate of alert #")
    assert "2 certificates expire soon" in received[1].json()["message"]
    silent = {
        r["title"]: r["reason"]
        for r in rows
        if r["status"] == "suppressed" and r["title"] != "loud completed"
    }
    assert silent == {
        "quiet completed": "delivery mode failure_only: run_completed is not delivered",
        "mute failed": "delivery mode none: run_failed is not delivered",
    }


def test_an_undeliverable_alert_is_dead_lettered_to_the_fallback_and_retried(
    engine: Engine,
    scratch_database: str,
    http_sink: HttpSink,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mail = {
        "name": "mail",
        "channel": "email",
        "host": smtp_sink.host,
        "port": smtp_sink.port,
        "security": "none",
        "sender": "automates@example.com",
        "to": ["oncall@example.com"],
    }
    route_to(
        engine,
        {
            "routes": [hook(http_sink, monkeypatch), mail],
            "alerts": {"default": ["hook"]},
            "fallback": "mail",
        },
    )
    http_sink.respond(500, b"down")
    [alert_id] = raise_all(engine, catalog.breaker_opened("fragile", 10, 3600))
    with delivering(settings_for(scratch_database, max_attempts=3), engine):
        rows = settled(engine, 2)
        [letter] = smtp_sink.wait_for(1)
        dead = rows[0]
        assert dead["status"] == "dead" and dead["attempts"] == 3
        assert f"Alert #{alert_id}" in letter.body and "route hook" in letter.subject
        assert TOKEN not in dead["reason"] and TOKEN not in letter.body
        # The route is back: the operator retries the dead delivery.
        http_sink.respond(200)
        env = {**os.environ, "AUTOMATES_DATABASE_URL": scratch_database}
        retried = invoke_json(env, "alerts", "retry", str(dead["id"]))
        assert retried == {"delivery_id": dead["id"], "status": "pending"}
        wait_for(lambda: deliveries(engine)[0]["status"] == "sent", 60, "the retried send")
    listed = invoke_json(env, "alerts", "list")
    assert {(d["route"], d["status"]) for d in listed} == {("hook", "sent"), ("mail", "sent")}
    text_out = json.dumps(listed) + caplog.text
    assert TOKEN not in text_out


def test_a_deliverer_killed_mid_batch_loses_and_doubles_nothing(
    engine: Engine, scratch_database: str, http_sink: HttpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = hook(http_sink, monkeypatch) | {"rate_limit_per_hour": 1000}
    route_to(engine, {"routes": [route], "alerts": {"default": ["hook"]}})
    release = threading.Event()

    def slow(request: ReceivedRequest) -> Reply:
        release.wait(30)  # every answer waits: the kill lands while a send is in flight
        return Reply()

    http_sink.answer_with(slow)
    ids = raise_all(engine, *(missed(f"job-{n}", "2026-12-04T03:00:00Z") for n in range(20)))
    env = {
        **os.environ,
        **http_sink.env(),
        "AUTOMATES_DATABASE_URL": scratch_database,
        "AUTOMATES_ALERT_POLL_SECONDS": "0.2",
        "HOOK_URL": os.environ["HOOK_URL"],
    }

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "automates.alerts"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    first = start()
    try:
        http_sink.wait_for(1, timeout=60)  # the first send is in flight, unanswered
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        first.kill()
    http_sink.answer_with(lambda request: Reply())
    release.set()
    second = start()
    try:
        rows = settled(engine, 20, timeout=120)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    assert [r["status"] for r in rows] == ["sent"] * 20
    received = alert_ids(http_sink.requests)
    assert sorted(set(received)) == ids  # nothing lost
    counts = Counter(received)
    doubled = [alert for alert, n in counts.items() if n > 1]
    # Only the send cut by the kill may arrive twice (its outcome was unknown), with one key.
    assert doubled in ([], [ids[0]]), counts
    assert counts[ids[0]] <= 2
    keys = {
        r.header("Idempotency-Key")
        for r in http_sink.requests
        if r.json()["alert_id"] == str(ids[0])
    }
    assert len(keys) == 1
    assert AlertKind(rows[0]["kind"]) is AlertKind.MISSED_TICK
