"""`automates preview` and `automates schedules` as an operator runs them."""

from __future__ import annotations

import pytest

from automates.scheduling.jitter import stable_offset
from tests.fixtures.commands import invoke, invoke_json
from tests.fixtures.projects import Project, automate


@pytest.fixture
def env(project: Project) -> dict[str, str]:
    project.declare(
        automate(
            "night-report",
            jitter_seconds=600,
            schedules=[
                {"slug": "hourly", "when": "every hour", "timezone": "Europe/Paris"},
                {"slug": "once", "at": "2026-12-01T21:30:00+01:00"},
            ],
            quiet_hours={
                "start": "22:00",
                "end": "01:00",
                "timezone": "Europe/Paris",
                "action": "defer",
            },
        ),
        automate("on-demand", kind="oneshot", schedules=[]),
    )
    return project.env()


def test_preview_of_a_declared_automate(env: dict[str, str]) -> None:
    offset = stable_offset("night-report", "hourly", 600)
    found = invoke_json(
        env,
        "preview",
        "night-report",
        "--from",
        "2026-12-01T20:00:00+01:00",
        "--count",
        "6",
        "--tz",
        "Europe/Paris",
    )
    hourly, once = found["schedules"]
    assert hourly["became"] == "when 'every hour' → cron '0 * * * *'"
    assert hourly["offset_seconds"] == offset
    assert once["offset_seconds"] == 0  # a one-off keeps its exact time
    rows = [(t["schedule"], t["local"][11:19], t["status"]) for t in found["ticks"]]
    minute, second = divmod(offset, 60)
    at = f"{minute:02d}:{second:02d}"
    assert rows == [
        ("hourly", f"20:{at}", "fire"),
        ("hourly", f"21:{at}", "fire"),
        ("once", "21:30:00", "fire"),
        ("hourly", f"22:{at}", "defer"),
        ("hourly", f"23:{at}", "defer"),
        ("hourly", f"00:{at}", "defer"),
    ]
    assert {t["runs_at"] for t in found["ticks"][3:]} == {"2026-12-02T01:00:00+01:00"}
    assert "quiet hours 22:00-01:00 Europe/Paris" in found["ticks"][3]["reason"]


def test_preview_of_a_spec_in_a_timezone(env: dict[str, str]) -> None:
    found = invoke_json(
        env,
        "preview",
        "every weekday at 9",
        "--tz",
        "Asia/Makassar",
        "--from",
        "2026-11-20T00:00:00",
        "--count",
        "3",
    )
    assert [t["local"] for t in found["ticks"]] == [
        "2026-11-20T09:00:00+08:00",
        "2026-11-23T09:00:00+08:00",
        "2026-11-24T09:00:00+08:00",
    ]
    skipped = invoke_json(
        env,
        "preview",
        "0 * * * *",
        "--from",
        "2026-11-20T21:00:00Z",
        "--count",
        "3",
        "--quiet",
        "22:00-23:00",
    )
    assert [t["status"] for t in skipped["ticks"]] == ["fire", "skip", "fire"]


def test_the_table_echoes_what_each_schedule_became(env: dict[str, str]) -> None:
    out = invoke(env, "preview", "every 7 minutes", "--count", "2").stdout
    assert "every '7m'" in out and "interval=420.0" in out
    rows = invoke_json(env, "schedules", "night-report")
    assert [r["became"] for r in rows] == [
        "when 'every hour' → cron '0 * * * *'",
        "at '2026-12-01T20:30:00Z'",
    ]
    assert rows[0]["prefect_schedule"]["cron"].endswith(
        f" * * * * {rows[0]['offset_seconds'] % 60}"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evry 15 minutes"], "did you mean 'every 15 minutes'?"),
        (["on-demand"], "has no schedule"),
        (["0 * * * *", "--tz", "Mars/Olympus"], "--tz: 'Mars/Olympus' is not an IANA timezone"),
        (["0 * * * *", "--from", "yesterday"], "--from: 'yesterday' is not an RFC 3339 time"),
        (["0 * * * *", "--quiet", "22:00"], "--quiet '22:00': write it as HH:MM-HH:MM"),
    ],
)
def test_bad_input_is_a_clear_error(env: dict[str, str], args: list[str], message: str) -> None:
    done = invoke(env, "preview", *args, code=2)
    assert message in " ".join(done.stderr.split())
