"""The guard around one flow: the pipeline every run of every automate goes through.

    wait for the tick ─► RunContext ─► pre-checks, in order ─► environment ─► attempts
                                         (a state ends the run)                 │
                          journals and breaker (Prefect's final-state hooks) ◄──┘

From the RunContext to the end of the attempts the run sends its heartbeats (heartbeats.py),
so a run whose process dies on the way is marked Crashed.

The wrapped flow is still the declared flow (same name, parameters, hooks); Prefect enforces
the timeout (`timeout_seconds`, final state "TimedOut"), and the guard runs the attempts itself
(automates/guard/attempts.py) so that each retry can wait an exponentially growing, jittered
delay and each failed attempt is journaled with the outcome of its retry.

Reading order: context.py (what a run is), prechecks.py (the protocol), then each pre-check in
PRECHECKS order, attempts.py, heartbeats.py, recording.py (the journals), engine.py (how a
worker gets here).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import Flow
from prefect.client.schemas.objects import FlowRun, State
from prefect.logging.loggers import flow_run_logger

from automates.envfiles import read_env_files
from automates.guard import attempts, breaker, submission
from automates.guard.approval import ApprovalCheck
from automates.guard.concurrency import ConcurrencyCheck
from automates.guard.context import RunContext, in_force, this_flow_run
from automates.guard.heartbeats import beating
from automates.guard.journal import RunJournal
from automates.guard.logs import run_logger
from automates.guard.misfire import MisfireCheck, SkipPolicyMisfireCheck
from automates.guard.orchestrator import Orchestrator, PrefectOrchestrator
from automates.guard.prechecks import EnvironmentCheck, PreCheck
from automates.guard.quiet_hours import QuietHoursCheck
from automates.guard.recording import record_run
from automates.guard.repair import LOG_DIR_ENV
from automates.registry.policy import GuardPolicy
from automates.settings import Settings

# The questions asked before a run's body, in this order; the first state returned ends it.
# Cheapest and most final first: the environment, the quiet window, a missed tick, the
# approval (the run may wait here, out of its process), and last the concurrency slot, taken
# only by a run that will really start, and held until its attempts are over.
PRECHECKS: tuple[PreCheck, ...] = (
    EnvironmentCheck(),
    QuietHoursCheck(),
    MisfireCheck(),
    ApprovalCheck(),
    ConcurrencyCheck(),
)

# The first of those questions, in the same order, as far as each is answered from the run
# alone, without a wait: a worker asks them before it starts the run's process, and settles a
# run one of them ends without one (automates/platform/before_start.py). A run none of them
# ends asks all of PRECHECKS again in its process. Only the last may answer less than its
# counterpart (misfire: only under `skip`), so a refusal here is the pipeline's own.
BEFORE_PROCESS: tuple[PreCheck, ...] = (
    EnvironmentCheck(),
    QuietHoursCheck(),
    SkipPolicyMisfireCheck(),
)

# Prefect's server lets a run turn Running up to half a second before its scheduled time (it
# rounds the wait to whole seconds); a wait longer than this is a clock problem, not a lead.
MAX_TICK_WAIT_SECONDS = 1.0


class Guard:
    """The guard of one automate's flow: builds each run's context, runs the pipeline, and
    hands the run's journal to the final-state hook that writes it."""

    def __init__(
        self,
        policy: GuardPolicy,
        settings: Settings,
        orchestrator: Orchestrator | None = None,
        *,
        owns_process: bool = False,
    ) -> None:
        self.policy = policy
        self.settings = settings
        self.orchestrator = orchestrator or PrefectOrchestrator()
        self.owns_process = owns_process
        # How a superseded process leaves (tests replace it: the real one ends the process).
        self.leave: Callable[[RunContext, str], None] = submission.leave_quietly
        # The runs this guard began whose final-state hook has not run yet, by flow run id:
        # the hook is where the journal is written, after the body has returned.
        self._in_progress: dict[str, RunJournal] = {}

    def begin(self, flow_run: FlowRun | None) -> RunContext:
        run = RunContext(
            policy=self.policy,
            settings=self.settings,
            flow_run=flow_run,
            orchestrator=self.orchestrator,
            logger=run_logger(),
            journal=RunJournal(self.policy.automate),
            owns_process=self.owns_process,
        )
        self._in_progress[run.run_id] = run.journal
        return run

    def heartbeats(self, flow_run: FlowRun | None) -> AbstractContextManager[None]:
        """The run's heartbeats, sent while the block runs (heartbeats.py)."""
        return beating(self.orchestrator, flow_run, self.settings.run_heartbeat_seconds)

    def decide(self, run: RunContext) -> State | None:
        """The state that ends the run before its body, or None once it may start (its
        environment prepared, its slot held in `run.held`). A process a re-submission
        superseded leaves first (automates/guard/submission.py)."""
        if self.owns_process:
            recorded = submission.superseded_by(run, submission.own_identifiers())
            if recorded is not None:
                self.leave(run, recorded)
        for precheck in PRECHECKS:
            refusal = precheck.check(run)
            if refusal is not None:
                return refusal
        self._prepare_environment(run)
        return None

    def decide_before_process(self, run: RunContext) -> State | None:
        """The state that ends the run before it has a process (BEFORE_PROCESS), or None
        when only its process can tell."""
        for precheck in BEFORE_PROCESS:
            refusal = precheck.check(run)
            if refusal is not None:
                return refusal
        return None

    def _prepare_environment(self, run: RunContext) -> None:
        """The run's log folder and env files, as variables of the run (exported only by a
        run that has its process to itself)."""
        log_dir = self.settings.data_path / "logs" / self.policy.automate
        log_dir.mkdir(parents=True, exist_ok=True)
        if LOG_DIR_ENV not in os.environ:  # an operator's own setting wins
            run.variables[LOG_DIR_ENV] = str(log_dir)
        files = read_env_files((Path.cwd() / name for name in self.policy.env_files), os.environ)
        run.variables.update(files)
        if files:
            run.journal.context["env_loaded"] = sorted(files)
        run.export_variables()

    def record(self, flow_run: FlowRun, state: State) -> None:
        """Final-state hook: journal the run's outcome, count it on the breaker. A journal
        that cannot be written is logged, and never turns a finished run into a failure."""
        logger = flow_run_logger(flow_run)
        journal = self._in_progress.pop(str(flow_run.id), None) or RunJournal(self.policy.automate)
        try:
            transition = record_run(
                self.settings, self.policy, journal, flow_run, state, datetime.now(UTC)
            )
        except Exception:
            logger.exception("could not write the journals of %s", self.policy.automate)
            return
        try:
            breaker.apply(
                transition,
                flow_run.deployment_id,
                schedules_active=self.policy.enabled,
                orchestrator=self.orchestrator,
            )
        except Exception:
            logger.exception(
                "journals written, but the breaker of %s could not reach the Prefect API "
                "(its schedules follow at the next `automates sync`)",
                self.policy.automate,
            )


def guarded(
    flow: Flow[..., Any],
    policy: GuardPolicy,
    settings: Settings,
    *,
    orchestrator: Orchestrator | None = None,
    owns_process: bool = False,
) -> Flow[..., Any]:
    """The declared flow with the automate's guard around it."""
    guard = Guard(policy, settings, orchestrator, owns_process=owns_process)

    def journal_the_run(flow: Flow[..., Any], flow_run: FlowRun, state: State) -> None:
        guard.record(flow_run, state)

    wrapped = flow.with_options(
        # A service's loop runs until it is stopped; its one-shot mode keeps its own deadline.
        timeout_seconds=None if policy.service else policy.timeout_seconds,
        retries=0,  # the guard retries itself, with backoff and journaling
        on_completion=[*flow.on_completion_hooks, journal_the_run],
        on_failure=[*flow.on_failure_hooks, journal_the_run],
        on_crashed=[*flow.on_crashed_hooks, journal_the_run],
        on_cancellation=[*flow.on_cancellation_hooks, journal_the_run],
    )
    wrapped.fn = _wrap(flow.fn, guard)
    return wrapped


def _wrap(fn: Callable[..., Any], guard: Guard) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            flow_run = this_flow_run()
            await asyncio.sleep(_until_tick(flow_run))
            run = guard.begin(flow_run)
            with guard.heartbeats(flow_run), in_force(run), run.held:
                refusal = guard.decide(run)
                if refusal is not None:
                    return refusal
                return await attempts.call_async(run, fn, args, kwargs)

        return guarded_async

    @functools.wraps(fn)
    def guarded_sync(*args: Any, **kwargs: Any) -> Any:
        flow_run = this_flow_run()
        time.sleep(_until_tick(flow_run))
        run = guard.begin(flow_run)
        with guard.heartbeats(flow_run), in_force(run), run.held:
            refusal = guard.decide(run)
            if refusal is not None:
                return refusal
            return attempts.call(run, fn, args, kwargs)

    return guarded_sync


def _until_tick(flow_run: FlowRun | None) -> float:
    """Seconds until this run's scheduled time when it is just ahead: an in-process worker
    starts a run's engine a little before its tick (automates/platform/inprocess.py), and the
    body waits here for the tick itself. Never more than MAX_TICK_WAIT_SECONDS."""
    if flow_run is None or flow_run.expected_start_time is None:
        return 0.0
    ahead = flow_run.expected_start_time.timestamp() - time.time()
    return min(max(ahead, 0.0), MAX_TICK_WAIT_SECONDS)
