"""`automates install-service` through the real command line: the file it writes, what it
refuses, and that no secret of the environment reaches the unit."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "s3cr3t-pa55word"
TOKEN = "auth-string-t0ken"


def cli(
    *args: str, home: Path, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The command in a fresh process, run from `home` (its HOME too, so that nothing it
    writes by default lands outside the test's folder)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOMATES_", "PREFECT_"))}
    return subprocess.run(
        [sys.executable, "-m", "automates.cli", "install-service", *args],
        capture_output=True,
        text=True,
        cwd=home,
        env={**base, "HOME": str(home), **(environ or {})},
        timeout=120,
    )


def sections(text: str) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return {name: dict(parser[name]) for name in parser.sections()}


def test_writes_refuses_to_replace_and_keeps_secrets_out(tmp_path: Path) -> None:
    unit_file = tmp_path / "automates.service"
    secrets = {
        "AUTOMATES_DATABASE_URL": f"postgresql://automates:{PASSWORD}@db.example:5432/automates",
        "PREFECT_API_AUTH_STRING": f"admin:{TOKEN}",
    }

    done = cli("--output", str(unit_file), "--json", home=tmp_path, environ=secrets)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["path"] == str(unit_file)
    assert report["state"] == "written"
    assert unit_file.read_text() == report["unit"]
    unit = sections(report["unit"])
    assert unit["Service"]["Type"] == "forking"  # supervisord, which `up` starts, is its main
    assert unit["Service"]["PIDFile"].endswith("/run/supervisord.pid")
    assert unit["Service"]["ExecStart"] == f'"{REPO}/scripts/up"'
    assert unit["Service"]["EnvironmentFile"] == f"-{REPO}/.env"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert report["next"][-2:] == [
        "systemctl daemon-reload",
        "systemctl enable --now automates.service",
    ]
    assert report["next"][0].startswith("install -D -m 644 ")  # written elsewhere: copy it
    assert "not run" in report["note"]
    everything = done.stdout + done.stderr + unit_file.read_text()
    assert PASSWORD not in everything
    assert TOKEN not in everything
    # The names (never the values) of what the service will not see.
    assert any("AUTOMATES_DATABASE_URL" in warning for warning in report["warnings"])

    again = cli("--output", str(unit_file), "--json", home=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["state"] == "unchanged"

    unit_file.write_text(unit_file.read_text() + "# edited by hand\n")
    refused = cli("--output", str(unit_file), "--json", home=tmp_path)
    assert refused.returncode == 2
    assert str(unit_file) in json.loads(refused.stdout)["error"]
    assert unit_file.read_text().endswith("# edited by hand\n")  # untouched

    forced = cli("--output", str(unit_file), "--force", "--json", home=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["state"] == "written"
    assert unit_file.read_text() == report["unit"]


def test_prints_the_unit_alone_on_stdout(tmp_path: Path) -> None:
    done = cli(
        "--output",
        "-",
        "--name",
        "layer",
        home=tmp_path,
        environ={"AUTOMATES_DATABASE_URL": f"postgresql://u:{PASSWORD}@h/db"},
    )

    assert done.returncode == 0, done.stderr
    unit = sections(done.stdout)
    assert list(unit) == ["Unit", "Service", "Install"]
    assert "systemctl enable --now layer.service" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert not list(tmp_path.rglob("*.service"))  # nothing written


def test_user_unit_goes_to_the_users_systemd_folder(tmp_path: Path) -> None:
    done = cli("--user", "--json", home=tmp_path)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    written = tmp_path / ".config/systemd/user/automates.service"
    assert report["path"] == str(written)
    unit = sections(written.read_text())
    assert "User" not in unit["Service"]
    assert unit["Install"]["WantedBy"] == "default.target"
    assert report["next"] == [
        "systemctl --user daemon-reload",
        "systemctl --user enable --now automates.service",
        "loginctl enable-linger",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "--user-name", "somebody"], "--user and --user-name exclude each other"),
        (["--name", "not a name"], "a unit name is"),
    ],
)
def test_bad_input_is_refused(tmp_path: Path, args: list[str], message: str) -> None:
    done = cli(*args, "--output", str(tmp_path / "unit.service"), home=tmp_path)

    assert done.returncode == 2
    assert message in " ".join(done.stderr.split())  # the console may wrap the line
    assert not list(tmp_path.rglob("*.service"))
