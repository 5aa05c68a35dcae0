"""`automates import crontab` as an operator runs it: dry run, --apply into the registry,
re-runs, --check, bad input, exit codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import Result

from automates.registry.entrypoints import static_problems, static_warnings
from automates.registry.loader import load_registry
from tests.fixtures.commands import invoke, invoke_json
from tests.fixtures.projects import Project

OWN = """\
# The operator's own registry: these comments must survive every import.
automates:
  # hello, declared by hand
  - name: hello
    kind: recurring
    caste: vigies
    family: audits
    description: says hello
    entrypoint: flows/hello.py:hello
    schedules:
      - cron: "0 3 * * *"   # at three
# the end of the operator's part
"""

CRONTAB = """\
MAILTO=ops@example.org
CRON_TZ=Asia/Makassar
GREETING=bonjour
# greet every five minutes
*/5 * * * * scripts/greet.sh >> /var/log/greet.log 2>&1
# paused 2026-04
#0 4 * * * scripts/audit.sh
0 2 * * * flock -n /tmp/export.lock scripts/export.sh
0 5 * * * scripts/removed.sh
@reboot scripts/nap.sh
"""


@pytest.fixture
def env(project: Project) -> dict[str, str]:
    project.registry.write_text(OWN)
    return project.env()


def cli(env: dict[str, str], *args: str, code: int, data: str | None = None) -> Result:
    return invoke(env, "import", "crontab", *args, code=code, data=data)


def imported(env: dict[str, str], project: Project, *args: str, code: int = 1) -> Any:
    crontab = project.root / "crontab.txt"
    if not crontab.exists():
        crontab.write_text(CRONTAB)
    return json.loads(
        cli(env, str(crontab), "--home", str(project.root), "--json", *args, code=code).stdout
    )


def test_a_dry_run_reports_every_line_and_writes_nothing(
    env: dict[str, str], project: Project
) -> None:
    report = imported(env, project)
    assert report["lines"] == 10 == sum(report["totals"].values())
    classes = [(r["line"], r["class"]) for r in report["results"]]
    assert classes == [
        (1, "env"),
        (2, "env"),
        (3, "env"),
        (4, "comment"),
        (5, "job"),
        (6, "comment"),
        (7, "disabled_job"),
        (8, "job"),
        (9, "broken"),
        (10, "needs_decision"),
    ]
    assert [d["name"] for d in report["declarations"]] == ["greet", "audit", "export", "removed"]
    assert report["env_file"] == {"path": "deployments/crontab.env", "variables": ["GREETING"]}
    assert "bonjour" not in json.dumps(report)  # a variable's value is never reported
    assert report["timezones"] == {"Asia/Makassar": "CRON_TZ in the crontab"}
    assert project.registry.read_text() == OWN
    assert not (project.root / "deployments" / "crontab.env").exists()


def test_apply_keeps_the_operators_text_and_validates(
    env: dict[str, str], project: Project
) -> None:
    report = imported(env, project, "--apply", "--family", "ops", "--caste", "horlogers")
    assert report["applied"]["registry_changed"] is True
    text = project.registry.read_text()
    assert text.startswith(OWN)
    registry = load_registry(project.registry)
    assert static_problems(registry, project.root) == []
    greet = registry.get("greet")
    assert greet is not None and greet.enabled and greet.family == "ops"
    assert greet.command == (str(project.root / "scripts" / "greet.sh"),)
    assert greet.env_files == ("deployments/crontab.env",)
    audit = registry.get("audit")
    assert audit is not None and not audit.enabled
    export = registry.get("export")
    assert export is not None and export.concurrency.value == "forbid"
    removed = registry.get("removed")  # broken: declared disabled, never run
    assert removed is not None and not removed.enabled
    assert removed.command == (str(project.root / "scripts" / "removed.sh"),)
    assert [(w.automate, w.field) for w in static_warnings(registry, project.root)] == [
        ("removed", "command")
    ]
    env_file = project.root / "deployments" / "crontab.env"
    assert "GREETING='bonjour'" in env_file.read_text()
    assert env_file.stat().st_mode & 0o077 == 0


def test_reimporting_changes_nothing_and_an_edit_changes_only_its_job(
    env: dict[str, str], project: Project
) -> None:
    imported(env, project, "--apply")
    first = project.registry.read_text()
    again = imported(env, project, "--apply")
    assert again["applied"]["registry_changed"] is False
    assert project.registry.read_text() == first
    crontab = project.root / "crontab.txt"
    crontab.write_text(
        CRONTAB.replace("*/5 * * * * scripts/greet.sh", "*/7 * * * * scripts/greet.sh")
    )
    imported(env, project, "--apply")
    changed = [
        (a, b)
        for a, b in zip(first.splitlines(), project.registry.read_text().splitlines(), strict=True)
        if a != b
    ]
    assert len(changed) == 3  # the greet line in its description, the schedule slug and cron
    assert all("*/5" in a or "slug" in a for a, _ in changed)


def test_a_declaration_moved_out_of_the_block_is_owned_by_the_operator(
    env: dict[str, str], project: Project
) -> None:
    imported(env, project, "--apply")
    registry = load_registry(project.registry)
    greet = registry.get("greet")
    assert greet is not None and greet.command is not None
    own = OWN + (
        "  - name: greeter\n    kind: recurring\n    caste: ops\n    family: ops\n"
        f"    description: mine now\n    command: [{greet.command[0]}]\n"
        f"    schedules:\n      - cron: '*/5 * * * *'\n        timezone: Asia/Makassar\n"
    )
    project.registry.write_text(own)
    report = imported(env, project, "--apply")
    [line5] = [r for r in report["results"] if r["line"] == 5]
    assert (line5["class"], line5["reason"]) == ("duplicate", "already declared as greeter")
    assert "greet" not in {a.name for a in load_registry(project.registry).automates}


def test_check_names_the_lines_not_represented(env: dict[str, str], project: Project) -> None:
    imported(env, project, "--apply")
    crontab = project.root / "crontab.txt"
    report = json.loads(
        cli(env, str(crontab), "--home", str(project.root), "--check", "--json", code=1).stdout
    )
    assert [r["line"] for r in report["unrepresented"]] == [9, 10]  # broken, @reboot
    crontab.write_text(CRONTAB + "15 1 * * * scripts/greet.sh\n")
    report = json.loads(
        cli(env, str(crontab), "--home", str(project.root), "--check", "--json", code=1).stdout
    )
    assert [r["line"] for r in report["unrepresented"]] == [9, 10, 11]
    crontab.write_text("CRON_TZ=Asia/Makassar\n*/5 * * * * scripts/greet.sh\n")
    cli(env, str(crontab), "--home", str(project.root), "--check", code=0)


def test_standard_input_and_a_clean_crontab_exit_zero(
    env: dict[str, str], project: Project
) -> None:
    done = cli(
        env,
        "-",
        "--home",
        str(project.root),
        "--timezone",
        "UTC",
        code=0,
        data="0 1 * * * scripts/greet.sh\n",
    )
    assert "greet" in done.stdout and "dry run" in done.stdout


@pytest.mark.parametrize(
    ("data", "args", "message"),
    [
        (b"0 1 * * * scripts/greet.sh\n0 2 * * * caf\xe9\n", (), "line 2, column 14: not UTF-8"),
        (b"CRON_TZ=Mars/Base\n", (), "line 1, field CRON_TZ: 'Mars/Base' is not an IANA"),
        (b"", ("--timezone", "Nowhere"), "--timezone: 'Nowhere'"),
        (b"", ("--apply", "--check"), "--apply and --check do not go together"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    env: dict[str, str], project: Project, data: bytes, args: tuple[str, ...], message: str
) -> None:
    crontab = project.root / "bad.txt"
    crontab.write_bytes(data)
    done = (
        cli(env, str(crontab), "--apply", *args, "--json", code=2)
        if "--apply" not in args
        else cli(env, str(crontab), *args, "--json", code=2)
    )
    assert message in json.loads(done.stdout)["error"]
    assert project.registry.read_text() == OWN
    assert not (project.root / "deployments" / "crontab.env").exists()


def test_a_missing_file_and_no_source_are_bad_input(env: dict[str, str], project: Project) -> None:
    missing = " ".join(cli(env, str(project.root / "nope"), code=2).stderr.split())
    assert missing.endswith("nope: No such file or directory; nothing was imported")
    assert "give one crontab" in " ".join(cli(env, code=2).stderr.split())


def test_a_registry_with_a_start_marker_only_is_refused(
    env: dict[str, str], project: Project
) -> None:
    from automates.crontab.registry_block import BEGIN

    project.registry.write_text(OWN + f"  {BEGIN}\n")
    before = project.registry.read_text()
    done = json.loads(cli(env, "-", "--apply", "--json", code=2, data="").stdout)
    assert "no end marker" in done["problems"][0]["message"]
    assert project.registry.read_text() == before


def test_the_table_accounts_for_every_line(env: dict[str, str], project: Project) -> None:
    crontab = project.root / "crontab.txt"
    crontab.write_text(CRONTAB)
    done = cli(env, str(crontab), "--home", str(project.root), code=1)
    assert (
        "10 lines: 2 job, 1 disabled_job, 1 broken, 1 needs_decision, 3 env, 2 comment"
        in done.stdout.replace("\n", " ")
    )


def test_validate_passes_after_apply_and_warns_of_each_broken_line(
    env: dict[str, str], project: Project
) -> None:
    imported(env, project, "--apply")
    report = invoke_json(env, "validate")
    assert report["valid"] is True and report["automates"] == 5
    assert report["warnings"] == [
        {
            "automate": "removed",
            "field": "command",
            "message": f"file {project.root}/scripts/removed.sh does not exist",
        }
    ]
    text = invoke(env, "validate")
    assert "warning: automate 'removed', field 'command'" in " ".join(text.stdout.split())


def test_reboot_option_and_mapping_file(env: dict[str, str], project: Project) -> None:
    mapping = project.root / "mapping.yaml"
    mapping.write_text(
        "rules:\n"
        "  - command: '*/scripts/greet.sh'\n    family: greetings\n    caste: vigies\n"
        "  - command: '*/scripts/ex*'\n    family: exports\n"
    )
    report = imported(
        env, project, "--reboot", "oneshot", "--mapping", str(mapping), "--caste", "ops"
    )
    classes = {r["line"]: r["class"] for r in report["results"]}
    assert classes[10] == "job"  # @reboot: the operator said it is a oneshot
    got = {d["name"]: (d["kind"], d["family"], d["caste"]) for d in report["declarations"]}
    assert got == {
        "greet": ("recurring", "greetings", "vigies"),
        "audit": ("recurring", "unclassified", "ops"),
        "export": ("recurring", "exports", "ops"),
        "removed": ("recurring", "unclassified", "ops"),
        "nap": ("oneshot", "unclassified", "ops"),
    }
    assert report["unclassified"] == ["audit", "removed", "nap"]
    crontab = project.root / "crontab.txt"
    done = cli(env, str(crontab), "--home", str(project.root), "--mapping", str(mapping), code=1)
    assert "3 declaration(s) with family or caste 'unclassified'" in " ".join(done.stdout.split())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - command: '*'\n    family: Big Ops\n", "field rules[0].family: 'Big Ops' is"),
        ("rules:\n  - command: '*'\n", "field rules[0].family: a rule gives a family, a caste"),
        ("rules:\n  - command: '*'\n    colour: red\n    family: x\n", "rules[0].colour: unknown"),
        ("- a\n", "must be a mapping with one key, rules"),
        ("rules: [", "not YAML"),
    ],
)
def test_a_bad_mapping_file_is_bad_input(
    env: dict[str, str], project: Project, text: str, message: str
) -> None:
    mapping = project.root / "mapping.yaml"
    mapping.write_text(text)
    crontab = project.root / "crontab.txt"
    crontab.write_text(CRONTAB)
    done = cli(env, str(crontab), "--apply", "--mapping", str(mapping), "--json", code=2)
    assert message in json.loads(done.stdout)["error"]
    assert project.registry.read_text() == OWN


def test_an_empty_registry_takes_the_block_and_gives_it_back(
    env: dict[str, str], project: Project
) -> None:
    project.registry.write_text("automates: []\n")
    crontab = project.root / "crontab.txt"
    crontab.write_text("0 1 * * * scripts/greet.sh\n")
    args = (str(crontab), "--home", str(project.root), "--timezone", "UTC", "--apply")
    cli(env, *args, code=0)
    assert project.registry.read_text().startswith("automates:\n  # >>> automates import")
    assert [a.name for a in load_registry(project.registry).automates] == ["greet"]
    cli(env, *args, code=0)  # again: nothing changes
    crontab.write_text("# nothing left\n")
    cli(env, *args, code=0)
    assert project.registry.read_text().startswith("automates: []\n")
    assert load_registry(project.registry).automates == ()


def test_an_own_declaration_may_follow_an_imported_one(
    env: dict[str, str], project: Project
) -> None:
    imported(env, project, "--apply")
    text = project.registry.read_text()
    follower = (
        "  - name: after-greet\n    kind: oneshot\n    caste: ops\n    family: ops\n"
        "    description: runs when greet completed\n    entrypoint: flows/hello.py:hello\n"
        "    triggers:\n      - after: greet\n"
    )
    project.registry.write_text(text.replace(OWN, OWN + follower))
    before = project.registry.read_text()
    again = imported(env, project, "--apply")
    assert again["applied"]["registry_changed"] is False
    crontab = project.root / "crontab.txt"
    crontab.write_text(CRONTAB.replace("scripts/greet.sh", "scripts/count.sh"))
    refused = json.loads(
        cli(env, str(crontab), "--home", str(project.root), "--apply", "--json", code=2).stdout
    )
    assert refused["problems"][0]["automate"] == "after-greet"
    assert project.registry.read_text() == before


def test_a_registry_past_its_size_is_refused_and_left_as_it_was(
    env: dict[str, str], project: Project
) -> None:
    crontab = project.root / "crontab.txt"
    crontab.write_text(
        "".join(f"{i % 60} {i // 60} * * * scripts/greet.sh {i} {'y' * 3000}\n" for i in range(400))
    )
    done = json.loads(
        cli(env, str(crontab), "--home", str(project.root), "--timezone", "UTC", "--apply",
            "--json", code=2).stdout
    )  # fmt: skip
    assert "would be larger than 1048576 bytes" in done["problems"][0]["message"]
    assert project.registry.read_text() == OWN


def test_a_registry_changed_while_importing_is_not_overwritten(project: Project) -> None:
    from automates.crontab.classify import Options, classify
    from automates.crontab.registry_block import apply, read_registry
    from automates.errors import DeclarationError

    project.registry.write_text(OWN)
    current = read_registry(project.registry)
    options = Options(project_root=project.root, home=project.root, timezone="UTC")
    result = classify(b"0 1 * * * scripts/greet.sh\n", options)
    edited = OWN.replace("says hello", "says hello twice")
    project.registry.write_text(edited)
    with pytest.raises(DeclarationError, match="the registry changed while"):
        apply(result, project.registry, project.root, current)
    assert project.registry.read_text() == edited
