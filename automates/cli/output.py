"""Shared CLI plumbing: settings loading, error reporting, JSON output."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from automates.envfiles import load_env_files
from automates.errors import AutomatesError, DeclarationError, SettingsError
from automates.settings import Settings, env_file_paths, unknown_variables

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
errors = Console(stderr=True)

EXIT_ERROR = 2  # 1 is kept for "ran, and found something" (drift, findings)


def load_settings() -> Settings:
    load_env_files(env_file_paths())
    unknown = unknown_variables(os.environ)
    if unknown:
        raise SettingsError(
            "unknown settings: " + "; ".join(unknown) + ". Nothing was done; the settings are "
            "listed in docs/configuration.md"
        )
    try:
        return Settings()
    except ValueError as error:  # pydantic's ValidationError
        raise AutomatesError(f"invalid settings: {error}") from error


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
                emit_json(
                    {
                        "error": "invalid declarations",
                        "problems": [p.as_dict() for p in error.problems],
                    }
                )
            else:
                errors.print(f"[red]error:[/red] {error}", highlight=False)
            raise typer.Exit(EXIT_ERROR) from None
        except AutomatesError as error:
            if kwargs.get("as_json"):
                emit_json({"error": str(error)})
            else:
                errors.print(f"[red]error:[/red] {error}", highlight=False)
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper  # type: ignore[return-value]


JsonOption = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")
