"""Shared CLI plumbing: settings loading, error reporting, JSON output."""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError as SourceError
from rich.console import Console

from automates.envfiles import load_env_files
from automates.errors import AutomatesError, DeclarationError, SettingsError
from automates.settings import (
    Settings,
    env_file_paths,
    not_json,
    unknown_variables,
    variable,
)
from automates.store.urls import mask_passwords

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
errors = Console(stderr=True)

# How the CLI's pages (`list`, `show`) write a moment.
TIME = "%Y-%m-%d %H:%M %Z"
EXIT_ERROR = 2  # 1 is kept for "ran, and found something" (drift, findings)


# Variables whose whole value is a credential, masked in every error message.
SECRET_VARIABLES = (
    "AUTOMATES_WEBHOOK_TOKEN",
    "AUTOMATES_GATE_WORKER_TOKEN",
    "AUTOMATES_BROWSER_PAYLOAD_KEY",
    "AUTOMATES_HEARTBEAT_URL",
    "PREFECT_API_KEY",
    "PREFECT_API_AUTH_STRING",
    "PREFECT_SERVER_API_AUTH_STRING",
)


@contextmanager
def working(message: str, as_json: bool = False) -> Iterator[None]:
    """A spinner saying what a long operation is doing, on a terminal only: never in `--json`
    output or a pipe, where it would be noise in what a script reads."""
    if as_json or not console.is_terminal:
        yield
        return
    with console.status(message):
        yield


def load_settings() -> Settings:
    loaded = load_env_files(env_file_paths())
    if any(name.startswith("PREFECT_") for name in loaded):
        # Prefect read its settings at import, before the env files: read them again, so
        # that this command's own client sees e.g. PREFECT_API_AUTH_STRING from .env.
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
    unknown = unknown_variables(os.environ)
    if unknown:
        raise SettingsError(
            "unknown settings: " + "; ".join(unknown) + ". Nothing was done; the settings are "
            "listed in docs/configuration.md"
        )
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(f"invalid settings: {settings_problems(error)}") from None
    except SourceError as error:  # a JSON setting that is not JSON
        field = re.search(r'field "(\w+)"', str(error))
        name = not_json(field.group(1), os.environ) if field else "a setting"
        raise SettingsError(f"invalid settings: {name}: not valid JSON") from None


def settings_problems(error: ValidationError) -> str:
    """Each refused setting by its variable and what is wrong, never with its value (the
    value may be a secret: pydantic's own text quotes it as `input_value=...`)."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False, include_context=False):
        name = variable(problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(message if message.startswith(name) else f"{name}: {message}")
    return "; ".join(lines)


def masked(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with every password in a URL, and every credential this process was given,
    as `***`: an error message must never echo a secret."""
    environ = os.environ if environ is None else environ
    secrets = [environ.get(name, "") for name in SECRET_VARIABLES]
    for name in ("AUTOMATES_DATABASE_URL", "AUTOMATES_BROWSER_PROXY"):
        try:
            password = urlsplit(environ.get(name, "")).password
        except ValueError:
            password = None
        if password:
            secrets += [password, unquote(password)]
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return mask_passwords(text)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def handle_errors(command: F) -> F:
    """Turn project errors into a clear message (or JSON) and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DeclarationError as error:
            if kwargs.get("as_json"):
                problems = [
                    {key: masked(value) for key, value in p.as_dict().items()}
                    for p in error.problems
                ]
                emit_json({"error": "invalid declarations", "problems": problems})
            else:
                _error_line(str(error))
            raise typer.Exit(EXIT_ERROR) from None
        except AutomatesError as error:
            if kwargs.get("as_json"):
                emit_json({"error": masked(str(error))})
            else:
                _error_line(str(error))
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def unexpected_errors() -> Iterator[None]:
    """An exception no module translated (a bug, or a library's error we did not foresee):
    its traceback, secrets masked, for the bug report, then one `error:` line (`{"error"}`
    on stdout with `--json`) and exit 2, "could not do it": never Python's 1, which here
    means "ran, and found something"."""
    try:
        yield
    except Exception as error:
        trace = "".join(traceback.format_exception(error))
        errors.print(masked(trace), markup=False, highlight=False, soft_wrap=True, end="")
        what = f"unexpected {type(error).__name__}: {error}"
        if "--json" in sys.argv:
            emit_json({"error": masked(what)})
        _error_line(f"{what} (a bug in automates: the traceback above says where; report it)")
        raise SystemExit(EXIT_ERROR) from None


def _error_line(message: str) -> None:
    # One line, never wrapped at the terminal's width: an error is read, searched and pasted
    # whole (the terminal still folds it on screen).
    errors.print(f"[red]error:[/red] {masked(message)}", highlight=False, soft_wrap=True)


JsonOption = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")
