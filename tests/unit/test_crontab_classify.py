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


def options(home: Path, **fields: object) -> Options:
    """The import's options for the operator's `home`, in UTC unless `fields` say otherwise."""
    return Options(project_root=home.parent, home=home, timezone="UTC", **fields)  # type: ignore[arg-type]


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
    backup, audit, gone = registry.automates
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
    # The broken line: declared disabled, with what cron ran and why it cannot run.
    assert (gone.name, gone.enabled, gone.command) == ("gone", False, (f"{home}/bin/gone.sh",))
    assert f"Broken at import: executable {home}/bin/gone.sh does not exist" in gone.description
    assert result.lines[8].name == "gone"
    assert "@reboot runs the command once" in str(result.lines[10].reason)


def test_macros_become_their_cron(home: Path) -> None:
    text = (
        "@hourly bin/a.sh\n@daily bin/b.sh\n@weekly bin/c.sh\n@monthly bin/d.sh\n@yearly bin/e.sh\n"
    )
    for name in "abcde":
        (home / "bin" / f"{name}.sh").write_text("")
        (home / "bin" / f"{name}.sh").chmod(0o755)
    result = classify(text.encode(), options(home))
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
    result = classify(text.encode(), options(home))
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
    result = classify(text.encode(), options(home, existing=declared))
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
    known = options(home, existing=declared)
    one = classify(b"0 3 * * * bin/backup.sh\n", known)
    two = classify(b"# another line first\n0 3 * * * bin/backup.sh\n", known)
    [a], [b] = one.declarations, two.declarations
    assert a["name"].startswith("backup-") and a["name"] == b["name"]


def test_lines_sharing_one_lock_need_a_decision(home: Path) -> None:
    text = (
        "0 3 * * * flock -n /tmp/db.lock bin/backup.sh\n"
        "30 3 * * * flock -n /tmp/db.lock bin/audit.sh\n"
        "0 5 * * * flock -n /tmp/own.lock bin/sync.sh\n"
    )
    result = classify(text.encode(), options(home))
    first, second, third = result.lines
    assert first.line_class is second.line_class is LineClass.NEEDS_DECISION
    assert "shares the lock /tmp/db.lock with line(s) 2" in str(first.reason)
    assert third.line_class is LineClass.JOB
    [declaration] = result.declarations
    assert declaration["concurrency"] == "forbid"


def test_a_declaration_the_registry_refuses_is_a_decision_naming_the_field(home: Path) -> None:
    text = f"0 3 * * * bin/backup.sh {'y' * 5000}\n"
    result = classify(text.encode(), options(home))
    [line] = result.lines
    assert line.line_class is LineClass.NEEDS_DECISION
    assert "field command[1]: String should have at most 4096 characters" in str(line.reason)


def test_a_variable_set_twice_and_jobs_before_variables(home: Path) -> None:
    text = "0 1 * * * bin/backup.sh\nA=1\nB=2\nA=3\n0 2 * * * bin/audit.sh\n"
    result = classify(text.encode(), options(home))
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
        options(home),
    )
    assert result.lines[1].line_class is LineClass.NEEDS_DECISION
    assert "before the lines that set B" in str(result.lines[1].reason)


def test_percent_and_six_fields_are_questions(home: Path) -> None:
    text = "0 3 * * * bin/backup.sh %Y\n0 3 * * * bin/backup.sh \\%Y\n1 2 3 4 5 6 bin/backup.sh\n"
    result = classify(text.encode(), options(home))
    first, second, third = result.lines
    assert first.line_class is LineClass.NEEDS_DECISION and "unescaped %" in str(first.reason)
    assert second.line_class is LineClass.JOB
    assert result.declarations[0]["command"][-1] == "%Y"
    assert third.line_class is LineClass.NEEDS_DECISION and "sixth time field" in str(third.reason)


def test_the_same_crontab_gives_the_same_declarations(home: Path) -> None:
    text = "0 3 * * * bin/backup.sh\n#0 4 * * * bin/audit.sh\n*/5 * * * * bin/sync.sh\n"
    utc = options(home)
    edited = "# new comment\n\n" + text.replace("*/5", "*/7")
    one, two = classify(text.encode(), utc), classify(text.encode(), utc)
    assert one.declarations == two.declarations
    three = classify(edited.encode(), utc)
    assert one.declarations[:2] == three.declarations[:2]  # only the edited job differs
    assert one.declarations[2]["schedules"] != three.declarations[2]["schedules"]


def test_reboot_with_its_restart_net_is_one_service(home: Path) -> None:
    text = (
        "# the sync loop, started at boot\n"
        "@reboot nohup bin/sync.sh --loop >> /tmp/sync.log 2>&1 &\n"
        "*/5 * * * * pgrep -f 'sync.sh --loop' > /dev/null || nohup bin/sync.sh --loop &\n"
        "0 3 * * * bin/backup.sh\n"
    )
    result = classify(text.encode(), options(home))
    classes = [(r.line_class, r.name) for r in result.lines]
    assert classes == [
        (LineClass.COMMENT, None),
        (LineClass.JOB, "sync-loop"),
        (LineClass.RESTART_NET, "sync-loop"),
        (LineClass.JOB, "backup"),
    ]
    assert result.findings == ()
    service, backup = parse_registry({"automates": list(result.declarations)}).automates
    assert (service.kind.value, service.command, service.schedules, service.enabled) == (
        "service",
        (f"{home}/bin/sync.sh", "--loop"),
        (),
        True,
    )
    assert "Restart net, now done by the layer: */5 * * * * pgrep" in service.description
    assert "History: the sync loop, started at boot" in service.description
    assert any("a service (kind: service)" in n for n in result.lines[1].notes)
    assert "the layer restarts the service itself now" in result.lines[2].notes[0]
    assert backup.kind.value == "recurring"


def test_a_net_that_watches_something_else_or_stands_alone_is_a_question(home: Path) -> None:
    text = (
        "@reboot bin/sync.sh\n"
        "*/5 * * * * pgrep -f other.sh || bin/sync.sh\n"
        "*/5 * * * * pgrep -f audit.sh || bin/audit.sh\n"
    )
    result = classify(text.encode(), options(home))
    reboot, mismatched, alone = result.lines
    assert reboot.line_class is LineClass.NEEDS_DECISION
    assert "--reboot service" in str(reboot.reason)
    assert mismatched.line_class is LineClass.NEEDS_DECISION
    assert "does not find the process it starts" in str(mismatched.reason)
    assert alone.line_class is LineClass.NEEDS_DECISION
    assert "no @reboot line starts the same command" in str(alone.reason)
    assert result.declarations == ()


@pytest.mark.parametrize("kind", ["service", "oneshot"])
def test_a_lone_reboot_is_what_the_operator_says(home: Path, kind: str) -> None:
    result = classify(b"@reboot timeout 120 bin/report.sh\n", options(home, reboot=kind))
    [line] = result.lines
    if kind == "service":  # a loop has no timeout: that is a question
        assert line.line_class is LineClass.NEEDS_DECISION
        assert "`timeout` would end it every 120 s" in str(line.reason)
        return
    assert (line.line_class, line.name) == (LineClass.JOB, "report")
    [declaration] = result.declarations
    assert (declaration["kind"], declaration["timeout_seconds"]) == ("oneshot", 120)
    assert "schedules" not in declaration
    assert any("run `automates trigger NAME`" in n for n in line.notes)
    alone = classify(b"@reboot bin/report.sh\n", options(home, reboot="service"))
    assert alone.declarations[0]["kind"] == "service"


def test_a_bad_reboot_option_is_bad_input(home: Path) -> None:
    with pytest.raises(CrontabError, match="--reboot 'daemon': give service or oneshot"):
        classify(b"", options(home, reboot="daemon"))


def test_commented_out_services_and_older_nets_are_history(home: Path) -> None:
    text = (
        "#@reboot bin/audit.sh\n"
        "#*/10 * * * * pgrep -f audit.sh || bin/audit.sh\n"
        "@reboot bin/sync.sh\n"
        "*/5 * * * * pgrep -f sync.sh || bin/sync.sh\n"
        "#*/2 * * * * pgrep -f bin/sync || bin/sync.sh\n"
        "@reboot bin/sync.sh\n"
    )
    result = classify(text.encode(), options(home))
    classes = [r.line_class for r in result.lines]
    assert classes == [
        LineClass.DISABLED_JOB,
        LineClass.RESTART_NET,
        LineClass.JOB,
        LineClass.RESTART_NET,
        LineClass.DUPLICATE,  # an older form of the net of line 3
        LineClass.DUPLICATE,  # the same service as line 3
    ]
    audit, sync = result.declarations
    assert (audit["kind"], audit["enabled"]) == ("service", False)
    assert sync["kind"] == "service" and "enabled" not in sync


def test_a_broken_service_is_declared_disabled(home: Path) -> None:
    text = "@reboot bin/gone.sh\n* * * * * pgrep -f gone.sh || bin/gone.sh\n"
    result = classify(text.encode(), options(home))
    assert [r.line_class for r in result.lines] == [LineClass.BROKEN, LineClass.RESTART_NET]
    [declaration] = result.declarations
    assert (declaration["kind"], declaration["enabled"]) == ("service", False)


def test_a_service_already_declared_is_a_duplicate_with_its_net(home: Path) -> None:
    declared = parse_registry(
        {
            "automates": [
                automate(
                    "syncer",
                    kind="service",
                    entrypoint=None,
                    schedules=None,
                    command=[f"{home}/bin/sync.sh"],
                )
            ]
        }
    ).automates
    text = (
        "@reboot bin/sync.sh\n*/5 * * * * pgrep -f sync.sh || bin/sync.sh\n@reboot bin/audit.sh\n"
    )
    result = classify(text.encode(), options(home, existing=declared))
    reboot, net, other = result.lines
    assert (reboot.line_class, reboot.reason) == (
        LineClass.DUPLICATE,
        "already declared as syncer",
    )
    assert net.line_class is LineClass.DUPLICATE and "restart net of syncer" in str(net.reason)
    assert other.line_class is LineClass.NEEDS_DECISION
    lone = classify(b"@reboot bin/sync.sh\n", options(home, existing=declared))
    assert lone.lines[0].line_class is LineClass.DUPLICATE  # declared: no question left


def test_timeouts_are_declared_and_tell_jobs_apart(home: Path) -> None:
    text = "0 3 * * * timeout 600 bin/backup.sh\n0 4 * * * timeout 60 bin/backup.sh\n"
    result = classify(text.encode(), options(home))
    first, second = result.declarations
    assert (first["timeout_seconds"], second["timeout_seconds"]) == (600, 60)
    assert first["name"] != second["name"] and first["name"].startswith("backup-")
    again = classify(text.encode(), options(home))
    assert again.declarations == result.declarations


def test_a_mapping_classifies_commands_and_reports_the_rest(home: Path) -> None:
    from automates.crontab.mapping import FamilyMap

    mapping = FamilyMap.model_validate(
        {
            "rules": [
                {"command": "*/backup.sh*", "family": "backups", "caste": "horlogers"},
                {"command": "*/audit.sh", "family": "audits"},
                {"command": "*/never-there*", "caste": "vigies"},
            ]
        }
    )
    text = "0 3 * * * bin/backup.sh --full\n0 4 * * * bin/audit.sh\n0 5 * * * bin/report.sh\n"
    result = classify(text.encode(), options(home, mapping=mapping, caste="oracles"))
    got = {d["name"]: (d["family"], d["caste"]) for d in result.declarations}
    assert got == {
        "backup-full": ("backups", "horlogers"),
        "audit": ("audits", "oracles"),  # the caste falls back to --caste
        "report": ("unclassified", "oracles"),
    }
    assert result.unclassified == ("report",)
    assert result.unused_rules == ("rules[2] (*/never-there*)",)
    assert result.as_dict()["unclassified"] == ["report"]
