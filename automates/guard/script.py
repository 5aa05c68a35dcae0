"""The flow every script automate runs: any executable, under the guard.

The command is run without a shell, in its own process group (automates/guard/command.py);
stdout and stderr reach the Prefect logs line by line as they come. Exit 0 completes; a
non-zero exit either means findings (soft-fail automates, e.g. audits: state "Findings", the
exit code kept) or fails the run (and the guard may retry it). When the guard's timeout
strikes, the whole process group is killed.
"""

from __future__ import annotations

from collections.abc import Iterable

from prefect import flow, get_run_logger
from prefect.states import Completed, State

from automates.guard import journal
from automates.guard.command import Command
from automates.guard.context import current
from automates.registry.policy import GuardPolicy


class NotDeclared(RuntimeError):
    """The script flow ran without a guarded declaration that names its command."""


class ScriptFailed(RuntimeError):
    """The script exited non-zero."""

    def __init__(self, argv: list[str], exit_code: int, stderr_tail: Iterable[str]) -> None:
        self.exit_code = exit_code
        tail = "\n".join(stderr_tail)
        super().__init__(f"{argv[0]} exited with {exit_code}" + (f":\n{tail}" if tail else ""))


@flow(name="script")
def run_script() -> State:
    """Run the declared command (the executable, relative to the project root or on PATH, and
    its arguments) as a subprocess of the guarded run.

    The command comes from the guard's policy, which the deployment carries from the
    declaration; the flow takes no parameter, so no trigger can change what runs.
    """
    logger = get_run_logger()
    run = current()
    if run is None or not run.policy.command:
        raise NotDeclared("a script runs only under the guard of a declaration that names it")
    policy = run.policy
    argv = list(policy.command or ())
    command = Command(argv, logger, run.command_environment())
    exit_code = command.wait()
    assert exit_code is not None  # no deadline: Prefect's timeout raises in this thread
    return finished(policy, argv, exit_code, command)


def finished(policy: GuardPolicy, argv: list[str], exit_code: int, command: Command) -> State:
    """The run's state for a command that exited: journaled; 0 completes, non-zero is
    findings for a soft-fail automate and otherwise ScriptFailed (retried by the guard)."""
    journal.note(exit_code=exit_code, command=argv)
    record = journal.current()
    if record is not None:
        record.exit_code = exit_code
    if exit_code == 0:
        return Completed(message=f"{argv[0]} exited 0")
    if policy.soft_fail:
        _publish_findings(policy.automate, argv, exit_code, command.stdout_tail)
        return Completed(
            name="Findings",
            message=f"{argv[0]} exited {exit_code}: findings",
            data={"exit_code": exit_code},
        )
    raise ScriptFailed(argv, exit_code, command.stderr_tail)


def _publish_findings(
    automate: str, argv: list[str], exit_code: int, stdout_tail: Iterable[str]
) -> None:
    from prefect.artifacts import create_markdown_artifact

    body = "\n".join(stdout_tail) or "(no output)"
    create_markdown_artifact(
        key=f"findings-{automate}",
        markdown=f"# Findings\n\n`{' '.join(argv)}` exited {exit_code}.\n\n```\n{body}\n```\n",
        description=f"exit code {exit_code}",
    )
