"""One guarded run, as every step of the guard sees it: built once by the runner, passed
explicitly to each pre-check, and made current for the run's body (the script and service
flows, the journal's calls) through a context variable, so runs side by side in one process
never see each other's."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from uuid import UUID

from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext

from automates.guard import journal
from automates.guard.logs import Logger
from automates.guard.orchestrator import Orchestrator
from automates.registry.policy import GuardPolicy
from automates.settings import Settings

# A command the guard starts learns which run it belongs to (a process worker's run has it
# already; a run of an in-process worker shares its process's environment, which cannot).
RUN_ID_VARIABLE = "PREFECT__FLOW_RUN_ID"


@dataclass(frozen=True)
class RunContext:
    """Everything the guard knows about one run. The references are fixed; the journal, the
    run's variables and the held resources fill in as the run goes."""

    policy: GuardPolicy
    settings: Settings
    flow_run: FlowRun | None
    orchestrator: Orchestrator
    logger: Logger
    journal: journal.RunJournal
    # The variables this run adds to its environment: its log folder, its env files. Scripts
    # and services get them in their command's environment (command.py).
    variables: dict[str, str] = field(default_factory=dict)
    # Resources held until the run's attempts are over (e.g. its concurrency slot).
    held: ExitStack = field(default_factory=ExitStack)
    # The run has its process to itself (the guard's engine, one run per process): its
    # variables are exported to the process environment, where a Python automate reads them.
    # Runs of an in-process worker share the process, and never write its environment.
    owns_process: bool = False

    @property
    def automate(self) -> str:
        return self.policy.automate

    @property
    def run_id(self) -> str:
        """The flow run's id, as the journal and the lock sessions name it."""
        return str(self.flow_run.id) if self.flow_run is not None else "unknown"

    @property
    def deployment_id(self) -> UUID | None:
        return self.flow_run.deployment_id if self.flow_run is not None else None

    def export_variables(self) -> None:
        """Put the run's variables in the process environment, where a Python automate reads
        them: only for a run that has its process to itself."""
        if self.owns_process:
            os.environ.update(self.variables)

    def command_environment(self, base: Mapping[str, str] = os.environ) -> dict[str, str]:
        """The environment of a command this run starts: the process's, the run's variables,
        the flow run's id."""
        environment = {**base, **self.variables}
        if self.flow_run is not None:
            environment[RUN_ID_VARIABLE] = str(self.flow_run.id)
        return environment


_CURRENT: ContextVar[RunContext | None] = ContextVar("automates_guarded_run", default=None)


@contextmanager
def in_force(context: RunContext) -> Iterator[RunContext]:
    """Make `context` the current run (and its journal the one written to) in this thread."""
    token = _CURRENT.set(context)
    try:
        with journal.keeping(context.journal):
            yield context
    finally:
        _CURRENT.reset(token)


def current() -> RunContext | None:
    """The guarded run this code runs in, or None outside the guard."""
    return _CURRENT.get()


def this_flow_run() -> FlowRun | None:
    """The flow run Prefect's engine is running in this thread: the one place the layer's run
    code asks Prefect's context for it; the guard's steps read it from the RunContext."""
    context = FlowRunContext.get()
    return context.flow_run if context is not None else None
