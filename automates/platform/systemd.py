"""A systemd unit that brings the layer back after a reboot: its inputs and its text.

`automates up` starts supervisord (detached, with a pid file), which runs and restarts every
process of the layer, and returns; `automates down` stops them all. So the unit is a forking
one whose main process is supervisord: systemd restarts the layer if supervisord itself dies,
the processes live in the unit's control group, and systemd kills any left after `down`.

Pure rendering: the CLI finds the checkout, the user and the files, and writes the text. Every
value is escaped per systemd.syntax(7): `%` starts a specifier everywhere, `$` a variable in
Exec lines, and quotes and backslashes are read in Exec and Environment lines (not in paths).
No setting is ever copied into the unit: the settings, secrets included, stay in the env file
it names, so the unit can be world-readable.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from automates.errors import ServiceUnitError

# The directories systemd's own PATH holds; the unit adds only where uv was found.
SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
USER_UNIT_DIR = Path(".config/systemd/user")  # under the home folder

_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.-]+")
_USER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ServiceUnit:
    """What the unit depends on: where the checkout is, who runs it, which manager."""

    name: str  # the unit is `<name>.service`
    checkout: Path
    user_unit: bool = False  # a unit of the user's own systemd instance, not of the system's
    user_name: str | None = None  # the account a system unit runs as
    path_dirs: tuple[Path, ...] = field(default=())  # put before SYSTEM_PATH (where uv is)
    data_dir: Path | None = None  # the layer's data folder (AUTOMATES_DATA_DIR); None: .data
    start_timeout_seconds: int = 300  # a cold `up`: uv sync, initdb, the server's migrations
    stop_timeout_seconds: int = 120  # `down` gives each stage 15 s before it kills

    def __post_init__(self) -> None:
        name = self.name.removesuffix(".service")
        if not _UNIT_NAME.fullmatch(name) or len(name) > 200:
            raise ServiceUnitError(
                f"--name {self.name!r}: a unit name is letters, digits and ':_.-' only"
            )
        object.__setattr__(self, "name", name)
        if self.user_unit and self.user_name is not None:
            raise ServiceUnitError(
                "--user and --user-name exclude each other: a user unit runs as the user "
                "whose systemd instance runs it"
            )
        if not self.user_unit and self.user_name is None:
            raise ServiceUnitError("a system unit needs the account it runs as (--user-name)")
        if self.user_name is not None and not _USER_NAME.fullmatch(self.user_name):
            raise ServiceUnitError(f"--user-name {self.user_name!r} is not a valid user name")
        for path in (self.checkout, self.pid_file, *self.path_dirs):
            path_value(path)  # refuses what a unit cannot hold
        for path in self.path_dirs:
            if ":" in str(path):
                raise ServiceUnitError(f"{path}: a folder of PATH cannot contain ':'")
        exec_line(self.up_script)  # refuses a checkout systemd cannot run a program from
        if min(self.start_timeout_seconds, self.stop_timeout_seconds) <= 0:
            raise ServiceUnitError("the start and stop timeouts must be positive")

    @property
    def file_name(self) -> str:
        return f"{self.name}.service"

    @property
    def env_file(self) -> Path:
        """The settings file: the one `automates` itself reads from the checkout."""
        return self.checkout / ".env"

    @property
    def pid_file(self) -> Path:
        """supervisord's pid file (automates/platform/supervision.py): the unit's main process."""
        return (self.data_dir or self.checkout / ".data") / "run" / "supervisord.pid"

    @property
    def up_script(self) -> Path:
        return self.checkout / "scripts" / "up"

    @property
    def down_script(self) -> Path:
        return self.checkout / "scripts" / "down"

    def render(self) -> str:
        search_path = ":".join(dict.fromkeys([*(str(p) for p in self.path_dirs), *SYSTEM_PATH]))
        unit = [
            "[Unit]",
            "Description=" + specifiers(f"automates scheduled-execution layer ({self.checkout})"),
        ]
        if not self.user_unit:
            # A user manager has no network-online.target: only the system's can wait for it.
            unit += ["Wants=network-online.target", "After=network-online.target"]
        # `up` starts supervisord, which runs (and restarts) every process of the layer, and
        # returns; supervisord is then the unit's main process. If it dies, systemd stops what
        # is left (`down`, then the control group) and starts the layer again.
        service = [
            "[Service]",
            "Type=forking",
            f"PIDFile={path_value(self.pid_file)}",
            "Restart=on-failure",
            "RestartSec=5",
        ]
        if self.user_name is not None:
            service.append(f"User={self.user_name}")
        service += [
            f"WorkingDirectory={path_value(self.checkout)}",
            # Optional (`-`): without it the layer runs on its defaults.
            f"EnvironmentFile=-{path_value(self.env_file)}",
            f"Environment={environment_assignment('PATH', search_path)}",
            f"Environment={environment_assignment('PYTHONUNBUFFERED', '1')}",
            f"ExecStart={exec_line(self.up_script)}",
            f"ExecStop={exec_line(self.down_script)}",
            f"TimeoutStartSec={self.start_timeout_seconds}",
            f"TimeoutStopSec={self.stop_timeout_seconds}",
        ]
        install = ["[Install]", f"WantedBy={self.wanted_by}"]
        header = [
            "# Written by `automates install-service`; run it again with --force to rewrite.",
            "# Settings (secrets included) belong in the EnvironmentFile, never in this file.",
        ]
        return "\n".join([*header, *unit, "", *service, "", *install]) + "\n"

    @property
    def wanted_by(self) -> str:
        return "default.target" if self.user_unit else "multi-user.target"

    def install_path(self, home: Path) -> Path:
        """Where the unit belongs: the system's unit folder, or the user's under `home`."""
        folder = home / USER_UNIT_DIR if self.user_unit else SYSTEM_UNIT_DIR
        return folder / self.file_name

    def next_commands(self, home: Path, written: Path | None) -> list[str]:
        """The commands that install (if written elsewhere), load and start the unit."""
        target = self.install_path(home)
        systemctl = "systemctl --user" if self.user_unit else "systemctl"
        commands = []
        if written is not None and written != target:
            commands.append(
                f"install -D -m 644 {shlex.quote(str(written))} {shlex.quote(str(target))}"
            )
        commands += [f"{systemctl} daemon-reload", f"{systemctl} enable --now {self.file_name}"]
        if self.user_unit:
            # Without lingering, a user's manager (and the layer) starts only at their login.
            commands.append("loginctl enable-linger")
        return commands


def specifiers(text: str) -> str:
    """`text` with its `%` doubled, so that systemd expands no specifier in it."""
    _check_value(text)
    return text.replace("%", "%%")


def path_value(path: Path) -> str:
    """A path as the value of a path setting (WorkingDirectory=, EnvironmentFile=).

    Such a value is taken whole, without quotes: a path with spaces needs none, and one with
    quotes keeps them. What cannot be written is refused: a newline, or a leading or trailing
    blank or trailing backslash, which the unit parser would strip or read as a continuation.
    """
    text = str(path)
    if not path.is_absolute():
        raise ServiceUnitError(f"{text!r}: a unit needs an absolute path")
    if text != text.strip() or text.endswith("\\"):
        raise ServiceUnitError(f"{text!r}: a path ending in a blank or '\\' cannot be in a unit")
    return specifiers(text)


def quoted(word: str) -> str:
    """`word` as one double-quoted word of an Exec or Environment line."""
    return '"' + specifiers(word).replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_argument(word: str) -> str:
    """`word` as one argument of an Exec line: quoted, with `$` doubled so that systemd
    substitutes no variable in it."""
    return quoted(word).replace("$", "$$")


def exec_line(executable: Path, *arguments: str) -> str:
    """An Exec line: the executable, then each argument. systemd substitutes no variable in
    the executable (so its `$` stays single) and refuses one with a quote or backslash."""
    text = str(executable)
    if not executable.is_absolute():
        raise ServiceUnitError(f"{text!r}: an Exec line needs an absolute path")
    if re.search(r"[\\\"']", text):
        raise ServiceUnitError(
            f"{text!r}: systemd cannot run a program whose path holds a quote or a backslash"
        )
    return " ".join([quoted(text), *(exec_argument(word) for word in arguments)])


def environment_assignment(name: str, value: str) -> str:
    """One `NAME=value` word of an Environment= line (where `$` means nothing)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ServiceUnitError(f"{name!r} is not an environment variable name")
    return quoted(f"{name}={value}")


def _check_value(text: str) -> None:
    if _CONTROL.search(text):
        raise ServiceUnitError(f"{text!r}: a unit cannot hold a newline or control character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ServiceUnitError(f"{text!r}: a unit holds UTF-8 text only") from None
