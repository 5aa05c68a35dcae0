"""The routes file and per-automate delivery: what is accepted, and what is refused, naming the
route and the field, never quoting a secret."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from automates.alerts.outbox import Alert, normalized
from automates.alerts.routes import JOURNAL, load_routing, registry_problems
from automates.alerts.secrets import route_problems
from automates.errors import DeclarationError
from automates.registry.alert_kinds import AlertKind, condition
from automates.registry.delivery import DeliveryMode
from automates.registry.loader import parse_registry
from automates.store.schema import ALERT_KINDS
from tests.fixtures.projects import automate

SLACK_URL = "https://hooks.slack.com/services/T0SECRET/B0SECRET/xoxSECRETTOKEN"


def _routing(tmp_path: Path, document: Any) -> Any:
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_routing(path)


def _refused(tmp_path: Path, document: Any) -> list[str]:
    with pytest.raises(DeclarationError) as error:
        _routing(tmp_path, document)
    return [str(problem) for problem in error.value.problems]


def test_no_file_means_everything_to_the_journal(tmp_path: Path) -> None:
    routing = load_routing(tmp_path / "absent.yaml")
    assert set(routing.all_routes) == {JOURNAL}
    assert routing.routes_for(AlertKind.BREAKER_OPENED) == (JOURNAL,)
    assert routing.delivery.mode is DeliveryMode.FAILURE_ONLY


def test_routes_kinds_and_overrides(tmp_path: Path) -> None:
    routing = _routing(
        tmp_path,
        {
            "routes": [
                {"name": "ops", "channel": "slack", "url": {"env": "OPS_URL"}},
                {
                    "name": "mail",
                    "channel": "email",
                    "host": "smtp.example.com",
                    "sender": "a@example.com",
                    "to": ["b@example.com"],
                    "password": {"secret": "smtp-password"},
                },
            ],
            "alerts": {"default": ["ops"], "breaker_opened": ["ops", "mail"]},
            "fallback": "mail",
            "delivery": {"mode": "announce"},
        },
    )
    assert routing.routes_for(AlertKind.MISSED_TICK) == ("ops",)
    assert routing.routes_for(AlertKind.BREAKER_OPENED) == ("ops", "mail")
    assert routing.routes_for(AlertKind.BREAKER_OPENED, {"breaker_opened": ("mail",)}) == ("mail",)
    assert routing.all_routes["mail"].secret_refs["password"].secret == "smtp-password"


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ({"name": "x", "channel": "pager"}, "route 'x', field 'channel'"),
        ({"name": "x", "channel": "slack"}, "route 'x', field 'url'"),
        ({"name": "x", "channel": "slack", "url": SLACK_URL}, "route 'x', field 'url'"),
        ({"name": "x", "channel": "slack", "url": {"env": "A", "secret": "b"}}, "field 'url'"),
        ({"name": "x", "channel": "email", "host": "h", "sender": "a@b"}, "field 'to'"),
        ({"name": "x", "channel": "log", "url": {"env": "A"}}, "route 'x', field 'url'"),
        ({"name": "Bad Name", "channel": "log"}, "field 'name'"),
    ],
)
def test_bad_routes_are_refused_by_name_and_field(
    tmp_path: Path, route: dict[str, Any], expected: str
) -> None:
    problems = _refused(tmp_path, {"routes": [route]})
    assert any(expected in problem for problem in problems), problems
    assert not any(SLACK_URL in problem for problem in problems)  # a literal URL is not echoed


def test_references_to_unknown_routes_and_kinds_are_refused(tmp_path: Path) -> None:
    assert "no route named 'nowhere'" in _refused(tmp_path, {"alerts": {"default": ["nowhere"]}})[0]
    assert "field 'alerts.breaker_open'" in _refused(tmp_path, {"alerts": {"breaker_open": []}})[0]
    assert "field 'fallback'" in _refused(tmp_path, {"fallback": "nowhere"})[0]
    assert "field 'delivery.mode'" in _refused(tmp_path, {"delivery": {"mode": "loud"}})[0]


def test_an_automate_naming_an_unknown_route_is_refused(tmp_path: Path) -> None:
    routing = _routing(tmp_path, {})
    registry = parse_registry(
        {
            "automates": [
                automate("a", delivery={"mode": "announce", "routes": ["ops"]}),
                automate("b", alerts={"held": ["journal", "pager"]}),
            ]
        }
    )
    problems = [str(p) for p in registry_problems(registry.automates, routing)]
    assert problems == [
        "automate 'a', field 'delivery.routes': no route named 'ops' in the routes file (journal)",
        "automate 'b', field 'alerts.held': no route named 'pager' in the routes file (journal)",
    ]
    with pytest.raises(DeclarationError, match=r"alerts\.run_completed"):
        parse_registry({"automates": [automate("c", alerts={"run_completed": ["journal"]})]})


def test_missing_and_malformed_secrets_name_the_route_never_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    routing = _routing(
        tmp_path,
        {
            "routes": [
                {"name": "unset", "channel": "slack", "url": {"env": "UNSET_HOOK"}},
                {"name": "wrong", "channel": "slack", "url": {"env": "WRONG_HOOK"}},
                {"name": "good", "channel": "slack", "url": {"env": "GOOD_HOOK"}},
            ]
        },
    )
    monkeypatch.delenv("UNSET_HOOK", raising=False)
    monkeypatch.setenv("WRONG_HOOK", "https://discord.com/api/webhooks/123/SECRETDISCORD")
    monkeypatch.setenv("GOOD_HOOK", SLACK_URL)
    problems = [str(p) for p in route_problems(routing)]
    assert len(problems) == 2, problems
    assert problems[0].startswith("route 'unset', field 'url': variable UNSET_HOOK is not set")
    assert problems[1].startswith("route 'wrong', field 'url':")
    assert not any("SECRET" in problem for problem in problems)


def test_kinds_conditions_and_signatures() -> None:
    latest = importlib.import_module("automates.store.migrations.versions.0016_llm_spend")
    assert latest.AFTER == ALERT_KINDS  # the CHECK list the migrations leave: every kind
    assert condition(AlertKind.COMPONENT_RECOVERED, "alerts") == condition(
        AlertKind.COMPONENT_CRASH_LOOP, "alerts"
    )
    assert condition(AlertKind.BREAKER_CLOSED, "a") == condition(AlertKind.BREAKER_OPENED, "a")
    assert condition(AlertKind.RUN_FAILED, "a") is None
    first = Alert(AlertKind.MISSED_TICK, "a", "t", "b", reason="missed at 2026-12-04T10:00:00Z")
    again = Alert(AlertKind.MISSED_TICK, "a", "t", "b", reason="missed at 2026-12-04T11:00:00Z")
    assert first.signature == again.signature
    assert normalized("run 6f1c2d3e-1111-2222-3333-444455556666 pid 123456") == "run # pid #"
    assert DeliveryMode.FAILURE_ONLY.delivers(AlertKind.RUN_FINDINGS)
    assert not DeliveryMode.FAILURE_ONLY.delivers(AlertKind.RUN_COMPLETED)
    assert DeliveryMode.ANNOUNCE.delivers(AlertKind.RUN_COMPLETED)
    assert not DeliveryMode.NONE.delivers(AlertKind.RUN_FAILED)
