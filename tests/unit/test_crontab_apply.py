"""`automates import crontab` as an operator runs it: dry run, --apply into the registry,
re-runs, --check, bad input, exit codes."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from automates.cli.app import app
from automates.registry.entrypoints import static_problems
from automates.registry.loader import load_registry
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
    return {
        **os.environ,
        "AUTOMATES_PROJECT_ROOT": str(project.root),
        "AUTOMATES_REGISTRY_FILE": str(project.registry),
    }


def cli(env: dict[str, str], *args: str, code: int, data: str | None = None) -> Result:
    done = CliRunner().invoke(app, ["import", "crontab", *args], env=env, input=data)
    assert done.exit_code == code, (done.stdout, done.stderr)
    return done


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
    assert [d["name"] for d in report["declarations"]] == ["greet", "audit", "export"]
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
    assert "# broken, not imported: 0 5 * * * scripts/removed.sh" in text
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
