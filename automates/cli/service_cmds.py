"""`automates install-service`: a systemd unit that brings the layer back after a reboot."""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from pathlib import Path

import typer
from dotenv import dotenv_values

from automates.cli.output import JsonOption, console, emit_json, errors, handle_errors
from automates.errors import ServiceUnitError
from automates.platform.systemd import ServiceUnit
from automates.settings import PROJECT_ROOT

app = typer.Typer()

NOT_RUN = "systemctl was not run: run the next commands yourself"


@app.command("install-service")
@handle_errors
def install_service(
    output: str | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Write the unit here instead of the systemd folder; '-' prints it.",
    ),
    name: str = typer.Option("automates", "--name", help="The unit is NAME.service."),
    user_unit: bool = typer.Option(
        False, "--user", help="A unit of your own systemd instance (~/.config/systemd/user)."
    ),
    user_name: str | None = typer.Option(
        None, "--user-name", help="The account a system unit runs as (default: you)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite a different unit file."),
    as_json: bool = JsonOption,
) -> None:
    """Write a systemd unit that runs `automates up` at boot and `automates down` at shutdown.

    It never runs systemctl: it prints the commands that load and enable the unit.
    """
    checkout = PROJECT_ROOT
    for script in ("up", "down"):
        if not os.access(checkout / "scripts" / script, os.X_OK):
            raise ServiceUnitError(
                f"{checkout / 'scripts' / script} is missing or not executable: the unit "
                "starts the layer from a checkout of the project"
            )
    if not user_unit:  # (both at once are refused by ServiceUnit, below)
        user_name = user_name or _invoking_user()
        _check_user(user_name)
    uv = shutil.which("uv")
    unit = ServiceUnit(
        name=name,
        checkout=checkout,
        user_unit=user_unit,
        user_name=user_name,
        path_dirs=(Path(uv).parent,) if uv and ":" not in uv else (),
        data_dir=_service_data_dir(checkout),
    )
    text = unit.render()
    home = Path.home()
    destination = None if output == "-" else Path(output or unit.install_path(home)).absolute()
    state = "printed" if destination is None else _write(destination, text, force=force)
    commands = unit.next_commands(home, destination)
    warnings = _warnings(unit)
    if as_json:
        emit_json(
            {
                "path": None if destination is None else str(destination),
                "state": state,
                "install_path": str(unit.install_path(home)),
                "unit": text,
                "next": commands,
                "warnings": warnings,
                "note": NOT_RUN,
            }
        )
        return
    # With `-o -` stdout is the unit alone; everything else goes to stderr.
    say = errors if destination is None else console
    if destination is None:
        sys.stdout.write(text)
    else:
        say.print(f"{state}: {destination}", markup=False, highlight=False, soft_wrap=True)
    if unit.user_name:
        say.print(f"runs as: {unit.user_name}", markup=False, highlight=False, soft_wrap=True)
    for warning in warnings:
        say.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    who = "" if user_unit else " (as root)"
    say.print(f"{NOT_RUN}{who}:", markup=False, highlight=False, soft_wrap=True)
    for command in commands:
        say.print(f"  {command}", markup=False, highlight=False, soft_wrap=True)


def _invoking_user() -> str:
    """The user who ran the command, also through sudo (root would run as root)."""
    if os.geteuid() == 0 and os.environ.get("SUDO_USER"):
        return os.environ["SUDO_USER"]
    return pwd.getpwuid(os.geteuid()).pw_name


def _check_user(user_name: str) -> None:
    try:
        pwd.getpwnam(user_name)
    except KeyError:
        raise ServiceUnitError(f"--user-name {user_name!r}: no such user on this host") from None


def _write(destination: Path, text: str, *, force: bool) -> str:
    """Write the unit unless an identical one is there; refuse to replace a different one."""
    try:
        if destination.is_dir():
            raise ServiceUnitError(f"{destination} is a folder: give a file for --output")
        if destination.exists():
            if destination.read_text(errors="replace") == text:
                return "unchanged"
            if not force:
                raise ServiceUnitError(
                    f"{destination} exists and differs: nothing was written (--force replaces it)"
                )
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = destination.with_name(f".{destination.name}.tmp")
        temporary.write_text(text)
        temporary.chmod(0o644)
        temporary.replace(destination)
    except PermissionError:
        raise ServiceUnitError(
            f"cannot write {destination}: permission denied (write a system "
            "unit with sudo, or use --user, or --output a file and copy it)"
        ) from None
    except OSError as error:
        raise ServiceUnitError(f"cannot write {destination}: {error.strerror}") from None
    return "written"


def _warnings(unit: ServiceUnit) -> list[str]:
    """What would make the service behave unlike this shell: settings it will not see, an
    env file others can read, a checkout another user owns."""
    found = []
    env_file = unit.env_file
    in_file = set(dotenv_values(env_file)) if env_file.is_file() else set()
    if not env_file.is_file():
        found.append(f"{env_file} does not exist: the service runs on the default settings")
    elif env_file.stat().st_mode & 0o077:
        found.append(f"{env_file} is readable by others: `chmod 600` it if it holds secrets")
    shell_only = sorted(
        variable
        for variable in os.environ
        if variable.startswith(("AUTOMATES_", "PREFECT_"))
        and variable != "AUTOMATES_TEST_DATABASE_URL"
        and variable not in in_file
    )
    if shell_only:
        found.append(
            f"set in this shell but not in {env_file}, so unseen by the service: "
            + ", ".join(shell_only)
        )
    here = Path.cwd() / ".env"
    if here.is_file() and here.resolve() != env_file.resolve():
        found.append(f"{here} is not read by the service (it runs in {unit.checkout})")
    if unit.user_name is not None:
        try:
            owner = pwd.getpwuid(unit.checkout.stat().st_uid).pw_name
        except KeyError:
            owner = str(unit.checkout.stat().st_uid)
        if owner != unit.user_name:
            found.append(
                f"{unit.checkout} belongs to {owner} but the service runs as {unit.user_name}: "
                "that user must be able to read it and write the data folder"
            )
    return found


def _service_data_dir(checkout: Path) -> Path | None:
    """The data folder the service will use: AUTOMATES_DATA_DIR of the checkout's `.env`
    (relative to the checkout, as the settings read it), or None for the default."""
    env_file = checkout / ".env"
    configured = dotenv_values(env_file).get("AUTOMATES_DATA_DIR") if env_file.is_file() else None
    return (checkout / configured).resolve() if configured else None
