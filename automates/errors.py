"""One exception root for the project.

Lower-level errors (SQLAlchemy, httpx, Prefect's client) are translated into these at the
boundary that meets them, so callers and the CLI only ever handle `AutomatesError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


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

    __slots__ = ("automate", "field", "message", "thing")

    def __init__(self, automate: str, field: str, message: str, *, thing: str = "automate") -> None:
        self.automate = automate  # the name of the thing: an automate, or a route
        self.field = field
        self.message = message
        self.thing = thing

    def __str__(self) -> str:
        return f"{self.thing} {self.automate!r}, field {self.field!r}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        found = {"automate": self.automate, "field": self.field, "message": self.message}
        return found if self.thing == "automate" else {**found, "thing": self.thing}


class UnknownAutomateError(AutomatesError):
    """No automate of that name is declared."""


class StoreError(AutomatesError):
    """The project's store (PostgreSQL) could not be reached or refused an operation."""


class PlatformError(AutomatesError):
    """A local component (embedded PostgreSQL, Prefect server, worker) failed to start or stop."""


class ServiceUnitError(AutomatesError):
    """The systemd unit cannot be made as asked (`automates install-service`); nothing was
    written."""


class ServerError(AutomatesError):
    """The Prefect API could not be reached or refused an operation."""


class UnknownTemplateError(AutomatesError):
    """No permission template of that name is saved; the message lists the known ones."""


class TemplateError(AutomatesError):
    """A permission template cannot be rendered for this scope (e.g. audit without a report
    folder); nothing was started."""


class UnknownLlmCliError(AutomatesError):
    """No automates-llm-cli block of that name is saved."""


class LlmError(AutomatesError):
    """A call to the model API failed after the SDK's own retries."""


class LlmOverBudgetError(LlmError):
    """A call of the LLM facade was refused before it was made: its worst case does not fit in
    its agent's rolling budget (or the budget could not be read)."""


class BrowserJobError(AutomatesError):
    """A browser job was refused or could not be enqueued, run or read."""


class BrowserPayloadError(BrowserJobError):
    """A browser job's kind or payload is invalid; nothing was created.

    The message names the kind and each field at fault.
    """


class BrowserPayloadKeyError(BrowserJobError):
    """A browser job's sealed payload fields cannot be decrypted with the keys at hand, or the
    key setting or file is unusable. The message names the job, the fields and where the keys
    come from, never a key or a value."""


class UnknownBrowserJobError(BrowserJobError):
    """No browser job has that id."""


class EgressError(BrowserJobError):
    """The egress safeguard refused to launch the browser (proxy down, or no residential IP)."""


class ScheduleSpecError(AutomatesError):
    """A schedule given on the command line (cron, every, at or a phrase) cannot be read."""


class ApprovalError(AutomatesError):
    """An approval cannot be given (the automate asks for none, or the server holds another
    version of it); nothing was recorded."""


class RunParametersError(AutomatesError):
    """Parameters given for a run do not fit the flow's parameters; nothing was started.

    The message names each parameter at fault.
    """


class UnknownPerimeterError(AutomatesError):
    """No perimeter of that id is in the store (`automates perimeter set` creates one)."""


class UnknownTaskRunError(AutomatesError):
    """No agent task run (or run) has that id."""


class TaskRunRequestError(AutomatesError):
    """An agent task run request is invalid; nothing was created. Names the field at fault."""


def field_problems(error: ValidationError, whole: str) -> str:
    """A pydantic validation error as one line naming each field at fault
    (`field 'x': message; ...`); `whole` names what an error of the whole model is about."""
    return "; ".join(
        f"field {'.'.join(str(p) for p in e['loc']) or whole!r}: {e['msg']}" for e in error.errors()
    )


def invalid_request(what: str, error: ValidationError) -> TaskRunRequestError:
    """The refusal of a request to the agents that failed validation (`what`: "run request",
    "agent task run request"), naming each field at fault."""
    return TaskRunRequestError(f"invalid {what}: {field_problems(error, '(request)')}")


class RoutineError(AutomatesError):
    """An agent's routine tool call is refused: the routine is not the agent's, an argument is
    malformed or over a limit, or the rule it breaks is named; nothing was changed."""


class HeartbeatError(AutomatesError):
    """An agent's heartbeat cannot be configured or run as asked (the field and the reason are
    named); nothing was changed."""


class WebhookCallerError(AutomatesError):
    """A webhook caller cannot be added, rotated or revoked as asked (nothing was changed)."""


class BackupError(AutomatesError):
    """A backup, a restore drill or a restore could not be done as asked (the step, the
    database or file, and the fix are named); a good backup is never replaced by a bad one."""


class RestoreRefused(BackupError):
    """A restore or a drill would touch the live database (or cannot tell that it would not);
    nothing was changed."""
