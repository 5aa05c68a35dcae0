"""The systemd unit of `automates install-service`: its text, and its escaping.

Every unit rendered here is checked twice: by `systemd-analyze verify` where it is installed
(it refuses bad quoting, unknown specifiers and an ExecStart that does not exist once
unescaped), and by reading it back with configparser and systemd's own unquoting rules.
"""

from __future__ import annotations

import configparser
import os
import pwd
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from automates.platform.systemd import (
    ServiceUnit,
    ServiceUnitError,
    environment_assignment,
    exec_argument,
    exec_line,
    path_value,
)

REPO = Path(__file__).resolve().parents[2]
ME = pwd.getpwuid(os.getuid()).pw_name
# systemd runs no program whose path holds a quote or a backslash (refused below).
ODD = "odd checkout 100% $HOME #;x"


def verify(unit: ServiceUnit, folder: Path) -> None:
    """`systemd-analyze verify` of the unit, written under its own name (skipped where
    systemd-analyze is not installed: the parse in each test still runs)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / unit.file_name
    path.write_text(unit.render())
    runtime = folder / "runtime"  # a user manager needs one, even to verify
    runtime.mkdir(mode=0o700, exist_ok=True)
    scope = ["--user"] if unit.user_unit else []
    done = subprocess.run(
        [analyze, "verify", "--man=no", *scope, str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert str(path) not in done.stderr, done.stderr


def parse(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read_string(text)
    return parser


def exec_words(line: str) -> list[str]:
    """An Exec line as systemd reads it: specifiers, quotes, then `$$` in the arguments (not
    in the executable, where systemd substitutes nothing)."""
    executable, *arguments = environment_words(line)
    return [executable, *(word.replace("$$", "$") for word in arguments)]


def environment_words(line: str) -> list[str]:
    """An Environment line as systemd reads it: specifiers, then quotes."""
    return shlex.split(line.replace("%%", "%"))


def odd_checkout(tmp_path: Path) -> Path:
    """A checkout whose path needs every escape, with scripts that exist."""
    checkout = tmp_path / ODD
    (checkout / "scripts").mkdir(parents=True)
    for script in ("up", "down"):
        (checkout / "scripts" / script).write_text("#!/bin/sh\n")
        (checkout / "scripts" / script).chmod(0o755)
    return checkout


def test_system_unit(tmp_path: Path) -> None:
    unit = ServiceUnit(name="automates", checkout=REPO, user_name=ME)
    verify(unit, tmp_path)

    parsed = parse(unit.render())
    assert parsed.sections() == ["Unit", "Service", "Install"]
    assert parsed["Unit"]["Wants"] == parsed["Unit"]["After"] == "network-online.target"
    service = parsed["Service"]
    # supervisord, started by `up`, is the main process: systemd restarts the layer if it dies.
    assert service["Type"] == "forking"
    assert service["PIDFile"] == f"{REPO}/.data/run/supervisord.pid"
    assert service["Restart"] == "on-failure"
    assert service["User"] == ME
    assert service["WorkingDirectory"] == str(REPO)
    assert service["EnvironmentFile"] == f"-{REPO}/.env"  # optional: `-`
    assert exec_words(service["ExecStart"]) == [str(REPO / "scripts" / "up")]
    assert exec_words(service["ExecStop"]) == [str(REPO / "scripts" / "down")]
    assert int(service["TimeoutStartSec"]) >= 300
    assert parsed["Install"]["WantedBy"] == "multi-user.target"
    assert unit.install_path(Path("/home/x")) == Path("/etc/systemd/system/automates.service")


def test_user_unit(tmp_path: Path) -> None:
    unit = ServiceUnit(name="automates-dev.service", checkout=REPO, user_unit=True)
    verify(unit, tmp_path)

    parsed = parse(unit.render())
    assert unit.file_name == "automates-dev.service"
    assert "User" not in parsed["Service"]
    assert "Wants" not in parsed["Unit"]  # a user manager has no network-online.target
    assert parsed["Install"]["WantedBy"] == "default.target"
    assert unit.install_path(Path("/home/x")) == Path(
        "/home/x/.config/systemd/user/automates-dev.service"
    )


def test_every_value_is_escaped(tmp_path: Path) -> None:
    checkout = odd_checkout(tmp_path)
    uv_dir = tmp_path / "uv 50%"
    unit = ServiceUnit(name="automates", checkout=checkout, user_name=ME, path_dirs=(uv_dir,))
    # verify resolves the specifiers and unquotes ExecStart/ExecStop: each must name the
    # script that exists, so a wrong escape fails here.
    verify(unit, tmp_path / "unit")

    text = unit.render()
    service = parse(text)["Service"]
    assert exec_words(service["ExecStart"]) == [str(checkout / "scripts" / "up")]
    assert exec_words(service["ExecStop"]) == [str(checkout / "scripts" / "down")]
    # Path settings take the value whole, unquoted: only `%` is escaped.
    assert service["WorkingDirectory"] == str(checkout).replace("%", "%%")
    assert service["EnvironmentFile"] == "-" + f"{checkout}/.env".replace("%", "%%")
    environment = [
        environment_words(line.removeprefix("Environment=")) for line in text.splitlines()
    ]
    assert [f"PATH={uv_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] in (
        environment
    )
    assert ODD.replace("%", "%%") in parse(text)["Unit"]["Description"]


def test_escaping_helpers() -> None:
    argument = '50% $x "q" a\\b'
    assert exec_argument(argument) == '"50%% $$x \\"q\\" a\\\\b"'
    line = exec_line(Path("/bin/$echo"), argument, "--flag")
    assert exec_words(line) == ["/bin/$echo", argument, "--flag"]
    assert environment_assignment("A", "$x 5%") == '"A=$x 5%%"'  # `$` means nothing there
    # A path setting takes the value whole: quotes and backslashes stay as they are.
    assert path_value(Path("/a b/%i/\"q'")) == "/a b/%%i/\"q'"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "a b"}, "unit name"),
        ({"name": "x@"}, "unit name"),
        ({"user_unit": True, "user_name": "me"}, "exclude each other"),
        ({"user_name": None}, "needs the account"),
        ({"user_name": "a b"}, "not a valid user name"),
        ({"checkout": Path("relative")}, "absolute"),
        ({"checkout": Path("/a\nb")}, "newline"),
        ({"checkout": Path("/a/b ")}, "blank"),
        ({"checkout": Path("/a/b\\")}, "blank or"),
        ({"checkout": Path("/it's")}, "quote or a backslash"),
        ({"path_dirs": (Path("/a:b"),)}, "':'"),
        ({"start_timeout_seconds": 0}, "positive"),
    ],
)
def test_what_a_unit_cannot_hold_is_refused(fields: dict[str, object], message: str) -> None:
    given: dict[str, object] = {"name": "automates", "checkout": REPO, "user_name": ME}
    with pytest.raises(ServiceUnitError, match=message):
        ServiceUnit(**{**given, **fields})  # type: ignore[arg-type]


def test_next_commands() -> None:
    home = Path("/home/me")
    system = ServiceUnit(name="automates", checkout=REPO, user_name=ME)
    assert system.next_commands(home, system.install_path(home)) == [
        "systemctl daemon-reload",
        "systemctl enable --now automates.service",
    ]
    assert system.next_commands(home, Path("/tmp/my unit.service"))[0] == (
        "install -D -m 644 '/tmp/my unit.service' /etc/systemd/system/automates.service"
    )
    user = ServiceUnit(name="automates", checkout=REPO, user_unit=True)
    assert user.next_commands(home, None) == [
        "systemctl --user daemon-reload",
        "systemctl --user enable --now automates.service",
        "loginctl enable-linger",
    ]


def test_no_setting_is_written() -> None:
    """The unit names the env file and sets only PATH and PYTHONUNBUFFERED: no setting (and
    so no secret) can reach it, whatever the environment holds."""
    text = ServiceUnit(name="automates", checkout=REPO, user_name=ME).render()
    assigned = [
        environment_words(line.removeprefix("Environment="))[0].split("=")[0]
        for line in text.splitlines()
        if line.startswith("Environment=")
    ]
    assert assigned == ["PATH", "PYTHONUNBUFFERED"]
    assert "AUTOMATES_" not in text
    assert "PREFECT_" not in text
