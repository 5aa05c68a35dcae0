"""`automates preview --simulate-outage FROM TO`: what the misfire policy would do with the
ticks of an outage, computed by the rule the guard applies."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from automates.registry.targets import spec_schedule
from automates.scheduling.misfire import Misfire
from automates.scheduling.preview import OutagePreview, simulate_outage
from tests.fixtures.commands import invoke, invoke_json
from tests.fixtures.projects import Project, automate

FROM = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def simulate(spec: str, hours: float, policy: Misfire, grace: int = 60) -> OutagePreview:
    schedule = spec_schedule(spec, timezone="UTC", jitter_seconds=0, now=FROM)
    end = FROM + timedelta(hours=hours)
    return asyncio.run(
        simulate_outage([schedule], start=FROM, end=end, policy=policy, grace_seconds=grace)
    )


def fates(outage: OutagePreview) -> list[tuple[str, str]]:
    return [(t.at.strftime("%H:%M"), t.fate) for t in outage.ticks]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (Misfire.SKIP, ["skip"] * 6),
        (Misfire.FIRE_ONCE, ["skip"] * 5 + ["run"]),
        (Misfire.CATCH_UP, ["skip"] * 3 + ["run"] * 3),
    ],
)
def test_each_policy_over_an_hour_of_ten_minute_ticks(policy: Misfire, expected: list[str]) -> None:
    outage = simulate("every 10m", 1, policy)
    # 09:00 to 09:50 are missed; 10:00 is the recovery itself: it starts on time.
    assert fates(outage) == [(f"09:{m}0", fate) for m, fate in zip(range(6), expected, strict=True)]
    assert outage.resumes_at == FROM + timedelta(hours=1)
    assert not outage.decision.hold


def test_ticks_within_the_grace_of_the_recovery_start_on_time() -> None:
    outage = simulate("every 10m", 1 + 5 / 60, Misfire.SKIP, grace=600)  # to 10:05, grace 10 min
    assert fates(outage)[-2:] == [("09:50", "skip"), ("10:00", "on_time")]
    assert outage.resumes_at == datetime(2026, 3, 10, 9, 55, tzinfo=UTC) + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("hours", "hold"),
    [(24, False), (25, True)],  # hourly: 24 ticks, the oldest 24 h 00 before; then 25 h
)
def test_catch_up_holds_past_24_hours(hours: int, hold: bool) -> None:
    outage = simulate("0 * * * *", hours, Misfire.CATCH_UP)
    assert outage.decision.hold is hold
    assert {t.fate for t in outage.ticks} == ({"hold"} if hold else {"skip", "run"})


@pytest.fixture
def env(project: Project) -> dict[str, str]:
    project.declare(
        automate(
            "hourly-sync",
            schedules=[{"slug": "hourly", "cron": "0 * * * *", "timezone": "Europe/Paris"}],
            misfire="catch_up",
            misfire_grace_seconds=120,
        ),
    )
    return project.env()


def outage_args(target: str, start: str, end: str) -> list[str]:
    """`automates preview TARGET --simulate-outage START END`, before its other options."""
    return ["preview", target, "--simulate-outage", start, end]


# An hourly spec down for two days with catch-up: 48 missed ticks, past the 24 h that holds.
TWO_DAYS_HOURLY_CATCH_UP = [
    *outage_args("every 1h", "2026-03-08T00:00:00Z", "2026-03-10T00:00:00Z"),
    "--misfire",
    "catch_up",
]


def test_a_declared_automate_is_simulated_with_its_own_policy(env: dict[str, str]) -> None:
    args = outage_args("hourly-sync", "2026-03-10T09:30:00", "2026-03-10T15:01:00")
    found = invoke_json(env, *args, "--tz", "Europe/Paris")
    assert (found["misfire"], found["grace_seconds"], found["hold"]) == ("catch_up", 120, False)
    assert found["outage"] == {
        "from": "2026-03-10T08:30:00+00:00",
        "to": "2026-03-10T14:01:00+00:00",
    }
    rows = [(t["local"][11:16], t["fate"]) for t in found["ticks"]]
    # 10:00 to 14:00 Paris missed (five); 15:00 is within the 120 s grace of 15:01.
    assert rows == [
        ("10:00", "skip"),
        ("11:00", "skip"),
        ("12:00", "run"),
        ("13:00", "run"),
        ("14:00", "run"),
        ("15:00", "on_time"),
    ]
    assert (found["missed"], found["run"]) == (5, 3)
    assert found["resumes_at"] == "2026-03-10T14:00:00+00:00"


def test_a_spec_takes_its_policy_and_grace_from_the_options(env: dict[str, str]) -> None:
    found = invoke_json(env, *TWO_DAYS_HOURLY_CATCH_UP, "--grace", "30")
    assert (found["misfire"], found["grace_seconds"], found["hold"]) == ("catch_up", 30, True)
    assert found["missed"] == 48 and found["run"] == 0
    assert "over 24 h" in found["summary"]


def test_the_text_shows_the_newest_ticks_and_the_hold(env: dict[str, str]) -> None:
    shown = invoke(env, *TWO_DAYS_HOURLY_CATCH_UP, "--count", "2").stdout
    assert "HOLD: the automate would be held for operator review" in shown
    assert "46 older ticks not shown" in shown
    assert "2026-03-09T23:00:00+00:00" in shown and "2026-03-09T21:00:00" not in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--simulate-outage", "2026-03-10T10:00:00Z", "2026-03-10T09:00:00Z"], "must be after"),
        (["--simulate-outage", "yesterday", "2026-03-10T09:00:00Z"], "not an RFC 3339 time"),
        (
            ["--simulate-outage", "2026-03-10T09:00:00Z", "2026-03-10T10:00:00Z", "--from", "now"],
            "--from: not with --simulate-outage",
        ),
    ],
)
def test_bad_outages_are_refused(env: dict[str, str], args: list[str], message: str) -> None:
    done = invoke(env, "preview", "every 10m", *args, code=2)
    assert message in done.stderr


def test_an_outage_too_long_for_its_schedule_is_refused(env: dict[str, str]) -> None:
    args = outage_args("every 10s", "2026-03-01T00:00:00Z", "2026-03-10T00:00:00Z")
    done = invoke(env, *args, "--json", code=2)
    assert (
        "fires more than 10000 times in the outage; shorten it" in json.loads(done.stdout)["error"]
    )
