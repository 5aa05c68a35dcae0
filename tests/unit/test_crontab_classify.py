"""A whole crontab classified: every line accounted for, declarations the registry accepts,
duplicates, shared locks, timezones and variables, and nothing guessed."""

from __future__ import annotations

from pathlib import Path

import pytest

from automates.crontab.classify import LineClass, Options, classify
from automates.crontab.lines import CrontabError
from automates.registry.loader import parse_registry
from tests.fixtures.projects import automate


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    for name in ("backup.sh", "audit.sh", "sync.sh", "report.sh"):
        script = home / "bin" / name
        script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
    return home


def test_every_line_is_counted_once_and_declarations_validate(home: Path) -> None:
    text = "\n".join(
        [
            "MAILTO=ops@example.org",
            "CRON_TZ=Asia/Makassar",
            "APP_ENV=prod",
            "",
            "# nightly backup",
            "0 3 * * * bin/backup.sh >> /var/log/backup.log 2>&1",
            "# paused 2026-04: too noisy",
            "#*/10 * * * * bin/audit.sh",
            "0 4 * * * bin/gone.sh",
            "*/0 * * * * bin/sync.sh",
            "@reboot bin/sync.sh",
        ]
    )
    result = classify(text.encode(), Options(project_root=home.parent, home=home))
    assert len(result.lines) == 11
    assert sum(result.totals.values()) == 11
    assert [line.line_class for line in result.lines] == [
        LineClass.ENV,
        LineClass.ENV,
        LineClass.ENV,
        LineClass.BLANK,
        LineClass.COMMENT,
        LineClass.JOB,
        LineClass.COMMENT,
        LineClass.DISABLED_JOB,
        LineClass.BROKEN,
        LineClass.UNPARSABLE,
        LineClass.NEEDS_DECISION,
    ]
    registry = parse_registry({"automates": list(result.declarations)})
    backup, audit = registry.automates
    assert (backup.name, backup.enabled, backup.command) == (
        "backup",
        True,
        (f"{home}/bin/backup.sh",),
    )
    assert (audit.name, audit.enabled) == ("audit", False)
    assert audit.schedules[0].cron == "*/10 * * * *"
    assert audit.schedules[0].timezone == "Asia/Makassar"
    assert "paused 2026-04: too noisy" in audit.description
    assert backup.env_files == ("deployments/crontab.env",)
    assert dict(result.env) == {"APP_ENV": "prod"}
    assert (backup.family, backup.caste) == ("unclassified", "unclassified")
    assert [f.number for f in result.findings] == [9, 10, 11]


def test_macros_become_their_cron(home: Path) -> None:
    text = (
        "@hourly bin/a.sh\n@daily bin/b.sh\n@weekly bin/c.sh\n@monthly bin/d.sh\n@yearly bin/e.sh\n"
    )
    for name in "abcde":
        (home / "bin" / f"{name}.sh").write_text("")
        (home / "bin" / f"{name}.sh").chmod(0o755)
    result = classify(text.encode(), Options(project_root=home.parent, home=home, timezone="UTC"))
    crons = [d["schedules"][0]["cron"] for d in result.declarations]
    assert crons == ["0 * * * *", "0 0 * * *", "0 0 * * 0", "0 0 1 * *", "0 0 1 1 *"]


def test_timezone_order_crontab_then_option_then_machine(home: Path) -> None:
    text = "0 1 * * * bin/a.sh\nCRON_TZ=Europe/Paris\n0 2 * * * bin/b.sh\n"
    for name in "ab":
        (home / "bin" / f"{name}.sh").write_text("")
        (home / "bin" / f"{name}.sh").chmod(0o755)
    result = classify(
        text.encode(), Options(project_root=home.parent, home=home, timezone="Asia/Tokyo")
    )
    zones = [d["schedules"][0]["timezone"] for d in result.declarations]
    assert zones == ["Asia/Tokyo", "Europe/Paris"]
    assert result.timezones == {
        "Asia/Tokyo": "--timezone",
        "Europe/Paris": "CRON_TZ in the crontab",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("CRON_TZ=Mars/Base\n", "line 1, field CRON_TZ: 'Mars/Base' is not an IANA timezone"),
        ("# x\nTZ=Nowhere\n", "line 2, field TZ: 'Nowhere'"),
    ],
)
def test_a_bad_timezone_in_the_crontab_is_bad_input(home: Path, text: str, message: str) -> None:
    with pytest.raises(CrontabError, match=message):
        classify(text.encode(), Options(project_root=home.parent, home=home))


def test_bad_options_are_bad_input(home: Path) -> None:
    with pytest.raises(CrontabError, match="--timezone: 'Mars'"):
        classify(b"", Options(project_root=home, home=home, timezone="Mars"))
    with pytest.raises(CrontabError, match="--family 'Ops Team' is not a slug"):
        classify(b"", Options(project_root=home, home=home, family="Ops Team"))


def test_duplicates_exact_near_and_merged_schedules(home: Path) -> None:
    text = "\n".join(
        [
            "0 3 * * * bin/backup.sh",
            "0 3 * * *  bin/backup.sh >> /tmp/log 2>&1",  # near: only the redirection differs
            "0 15 * * * bin/backup.sh",  # same job, another schedule: merged
            "#0 5 * * * bin/backup.sh",  # an older form of an active job
        ]
    )
    result = classify(text.encode(), Options(project_root=home.parent, home=home, timezone="UTC"))
    classes = {r.number: (r.line_class, r.name, r.reason) for r in result.lines}
    assert classes[1][:2] == (LineClass.JOB, "backup")
    assert classes[2] == (LineClass.DUPLICATE, "backup", "the same job as line 1")
    assert classes[3][:2] == (LineClass.JOB, "backup")
    assert classes[4][0] is LineClass.DUPLICATE and "older form of line 1" in str(classes[4][2])
    [declaration] = result.declarations
    assert [s["cron"] for s in declaration["schedules"]] == ["0 3 * * *", "0 15 * * *"]


def test_a_job_already_declared_is_a_duplicate(home: Path) -> None:
    declared = parse_registry(
        {
            "automates": [
                automate(
                    "nightly-backup",
                    entrypoint=None,
                    command=[f"{home}/bin/backup.sh"],
                    schedules=[{"cron": "0 3 * * *", "timezone": "UTC"}],
                )
            ]
        }
    ).automates
    text = "0 3 * * * bin/backup.sh\n0 4 * * * bin/backup.sh\n"
    options = Options(project_root=home.parent, home=home, timezone="UTC", existing=declared)
    result = classify(text.encode(), options)
    first, second = result.lines
    assert (first.line_class, first.reason) == (
        LineClass.DUPLICATE,
        "already declared as nightly-backup",
    )
    assert second.line_class is LineClass.NEEDS_DECISION
    assert "nightly-backup already runs this command" in str(second.reason)
    assert result.declarations == ()


def test_a_name_taken_by_a_declaration_gets_a_stable_digest(home: Path) -> None:
    declared = parse_registry({"automates": [automate("backup")]}).automates
    options = Options(project_root=home.parent, home=home, timezone="UTC", existing=declared)
    one = classify(b"0 3 * * * bin/backup.sh\n", options)
    two = classify(b"# another line first\n0 3 * * * bin/backup.sh\n", options)
    [a], [b] = one.declarations, two.declarations
    assert a["name"].startswith("backup-") and a["name"] == b["name"]


def test_lines_sharing_one_lock_need_a_decision(home: Path) -> None:
    text = (
        "0 3 * * * flock -n /tmp/db.lock bin/backup.sh\n"
        "30 3 * * * flock -n /tmp/db.lock bin/audit.sh\n"
        "0 5 * * * flock -n /tmp/own.lock bin/sync.sh\n"
    )
    result = classify(text.encode(), Options(project_root=home.parent, home=home, timezone="UTC"))
    first, second, third = result.lines
    assert first.line_class is second.line_class is LineClass.NEEDS_DECISION
    assert "shares the lock /tmp/db.lock with line(s) 2" in str(first.reason)
    assert third.line_class is LineClass.JOB
    [declaration] = result.declarations
    assert declaration["concurrency"] == "forbid"


def test_a_declaration_the_registry_refuses_is_a_decision_naming_the_field(home: Path) -> None:
    text = f"0 3 * * * bin/backup.sh {'y' * 5000}\n"
    result = classify(text.encode(), Options(project_root=home.parent, home=home, timezone="UTC"))
    [line] = result.lines
    assert line.line_class is LineClass.NEEDS_DECISION
    assert "field command[1]: String should have at most 4096 characters" in str(line.reason)


def test_a_variable_set_twice_and_jobs_before_variables(home: Path) -> None:
    text = "0 1 * * * bin/backup.sh\nA=1\nB=2\nA=3\n0 2 * * * bin/audit.sh\n"
    result = classify(text.encode(), Options(project_root=home.parent, home=home, timezone="UTC"))
    classes = [line.line_class for line in result.lines]
    assert classes == [
        LineClass.JOB,
        LineClass.ENV,
        LineClass.ENV,
        LineClass.NEEDS_DECISION,
        LineClass.JOB,
    ]
    first, second = result.declarations
    assert "env_files" not in first  # it ran before any variable was set
    assert second["env_files"] == ["deployments/crontab.env"]
    assert dict(result.env) == {"A": "3", "B": "2"}


def test_a_job_between_variables_needs_a_decision(home: Path) -> None:
    result = classify(
        b"A=1\n0 1 * * * bin/backup.sh\nB=2\n",
        Options(project_root=home.parent, home=home, timezone="UTC"),
    )
    assert result.lines[1].line_class is LineClass.NEEDS_DECISION
    assert "before the lines that set B" in str(result.lines[1].reason)


def test_percent_and_six_fields_are_questions(home: Path) -> None:
    text = "0 3 * * * bin/backup.sh %Y\n0 3 * * * bin/backup.sh \\%Y\n1 2 3 4 5 6 bin/backup.sh\n"
    result = classify(text.encode(), Options(project_root=home.parent, home=home, timezone="UTC"))
    first, second, third = result.lines
    assert first.line_class is LineClass.NEEDS_DECISION and "unescaped %" in str(first.reason)
    assert second.line_class is LineClass.JOB
    assert result.declarations[0]["command"][-1] == "%Y"
    assert third.line_class is LineClass.NEEDS_DECISION and "sixth time field" in str(third.reason)


def test_the_same_crontab_gives_the_same_declarations(home: Path) -> None:
    text = "0 3 * * * bin/backup.sh\n#0 4 * * * bin/audit.sh\n*/5 * * * * bin/sync.sh\n"
    options = Options(project_root=home.parent, home=home, timezone="UTC")
    edited = "# new comment\n\n" + text.replace("*/5", "*/7")
    one, two = classify(text.encode(), options), classify(text.encode(), options)
    assert one.declarations == two.declarations
    three = classify(edited.encode(), options)
    assert one.declarations[:2] == three.declarations[:2]  # only the edited job differs
    assert one.declarations[2]["schedules"] != three.declarations[2]["schedules"]
