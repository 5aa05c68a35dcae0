"""One exception root for the project.

Lower-level errors (SQLAlchemy, httpx, Prefect's client) are translated into these at the
boundary that meets them, so callers and the CLI only ever handle `AutomatesError`.
"""

from __future__ import annotations


class AutomatesError(Exception):
    """Something the operator can act on went wrong."""


class SettingsError(AutomatesError):
    """A setting is missing or invalid."""


class DeclarationError(AutomatesError):
    """The registry declarations are invalid; nothing was changed.

    Each problem names the automate and the field it concerns.
    """

    def __init__(self, problems: list[DeclarationProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} invalid declaration(s); nothing was changed:\n{lines}")


class DeclarationProblem:
    """One problem in one declaration: which automate, which field, what is wrong."""

    __slots__ = ("automate", "field", "message")

    def __init__(self, automate: str, field: str, message: str) -> None:
        self.automate = automate
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"automate {self.automate!r}, field {self.field!r}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"automate": self.automate, "field": self.field, "message": self.message}


class UnknownAutomateError(AutomatesError):
    """No automate of that name is declared."""


class StoreError(AutomatesError):
    """The project's store (PostgreSQL) could not be reached or refused an operation."""


class PlatformError(AutomatesError):
    """A local component (embedded PostgreSQL, Prefect server, worker) failed to start or stop."""


class ServerError(AutomatesError):
    """The Prefect API could not be reached or refused an operation."""
