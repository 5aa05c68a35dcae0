"""The worker's side of the run launcher (automates/platform/run_launcher.py).

`Launcher` keeps one launcher process ready: starts it, waits for its imports, starts another
when it dies or when its preloaded code went stale, and stops it with the worker.
`LauncherStarter` is a Prefect `ProcessStarter` (what Prefect's process worker uses to start a
run's process): it builds the run's environment exactly as Prefect's `EngineCommandStarter`
does, then asks the launcher for the process; when the launcher cannot take the run (not
ready within a minute, refused, a command that is not `python -m MODULE`), it starts the
process the ordinary way, with Prefect's own starter. Either way the run's process is the one
Prefect tracks, signals on cancellation and watches until it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from prefect.logging import get_logger
from prefect.runner._process_manager import ProcessHandle
from prefect.runner._starter_engine import EngineCommandStarter
from prefect.settings import get_current_settings
from prefect.utilities.processutils import command_from_string, sanitize_subprocess_env

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

# How long a run waits for a launcher that is importing (after the worker started, or after a
# launcher died or went stale) before it starts the ordinary way. Waiting is the cheaper path:
# runs arriving together would each pay the imports a fresh process pays (about 4 CPU-seconds
# each, on the same cores as the launcher's own import), where the launcher pays them once.
READY_TIMEOUT_SECONDS = 60.0
# A launcher that failed this many times in a row without becoming ready is not waited for.
FAILURES_NOT_WAITED_FOR = 2
# After a launcher died, the next one starts after this pause (a crash loop costs nothing).
RESTART_PAUSE_SECONDS = 2.0


@dataclass
class LaunchedProcess:
    """A run's process the launcher forked: what Prefect's `ProcessHandle` reads of a
    process (its pid, its exit status), the exit status reported by the launcher."""

    pid: int
    returncode: int | None = None
    _ended: asyncio.Event = field(default_factory=asyncio.Event)

    def end(self, code: int) -> None:
        self.returncode = code
        self._ended.set()

    async def wait(self) -> int:
        await self._ended.wait()
        assert self.returncode is not None
        return self.returncode


class Refused(RuntimeError):
    """The launcher cannot start this run (not ready, stale code, not one thread)."""


class Launcher:
    """One launcher process, kept ready for as long as the worker runs."""

    def __init__(self, root: Path, environment: Mapping[str, str]) -> None:
        self.root = root
        self._environment = dict(environment)
        self._logger = get_logger("automates.launcher")
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._launched: dict[int, LaunchedProcess] = {}  # request id -> process
        self._writer: asyncio.StreamWriter | None = None
        self._process: anyio.abc.Process | None = None
        self._ready = asyncio.Event()
        self._closing = False
        self._orphan_watches: set[asyncio.Task[None]] = set()
        self.pid: int | None = None
        self.starts = 0
        self._was_ready = False
        self._failures = 0  # in a row, without becoming ready

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> bool:
        with anyio.move_on_after(timeout):
            await self._ready.wait()
        return self.ready

    async def ready_soon(self) -> bool:
        """Ready now, or after waiting for a launcher that is importing and has not been
        failing (a launcher that cannot start is not waited for)."""
        if self.ready:
            return True
        if self._closing or self._failures >= FAILURES_NOT_WAITED_FOR:
            return False
        return await self.wait_ready()

    async def keep_running(self) -> None:
        """Start the launcher and start it again whenever it ends, until cancelled."""
        while not self._closing:
            self._was_ready = False
            try:
                await self._run_once()
            except Exception:
                self._logger.exception("the run launcher failed; starting another")
            if not self._was_ready:
                self._failures += 1
            if self._closing:
                return
            await anyio.sleep(RESTART_PAUSE_SECONDS)

    async def _run_once(self) -> None:
        ours, theirs = socket.socketpair()
        argv = [
            sys.executable,
            "-m",
            "automates.platform.run_launcher",
            "--fd",
            str(theirs.fileno()),
            "--root",
            str(self.root),
        ]
        try:
            process = await anyio.open_process(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=None,
                stderr=None,
                cwd=self.root,
                env=self._environment,
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        self._process = process
        self.starts += 1
        reader, self._writer = await asyncio.open_connection(sock=ours)
        try:
            await self._read(reader)
        finally:
            self._ready.clear()
            self._writer.close()
            self._writer = None
            self.pid = None
            for future in self._pending.values():
                future.set_exception(Refused("the launcher ended"))
            self._pending.clear()
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
            self._watch_orphans()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():  # end of file: the launcher ended
            message = json.loads(line)
            if "ready" in message:
                self.pid = message["ready"]
                self._was_ready, self._failures = True, 0
                self._logger.info("run launcher ready (pid %s)", self.pid)
                for failed in message.get("failed", []):
                    self._logger.warning("the run launcher could not preload %s", failed)
                self._ready.set()
            elif "exit" in message:
                launched = self._launched.pop(message["id"], None)
                if launched is not None:
                    launched.end(message["exit"])
            else:
                future = self._pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)

    def _watch_orphans(self) -> None:
        """Runs the dead launcher started live on without it: their end is watched through
        their pidfds (their exit status is lost with their parent: -1)."""
        for launched in self._launched.values():
            watch = asyncio.get_running_loop().create_task(_watch_exit(launched))
            self._orphan_watches.add(watch)
            watch.add_done_callback(self._orphan_watches.discard)
        self._launched.clear()

    async def launch(
        self, argv: list[str], env: Mapping[str, str], cwd: Path, quiet: bool
    ) -> LaunchedProcess:
        """Fork a process for one run; `Refused` when the launcher cannot."""
        if not self.ready or self._writer is None:
            raise Refused("the launcher is not ready")
        request_id = next(self._ids)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        request = {"id": request_id, "argv": argv, "env": dict(env), "cwd": str(cwd)}
        self._writer.write(json.dumps({**request, "quiet": quiet}).encode() + b"\n")
        await self._writer.drain()
        message = await answer
        if "refused" in message:
            self._logger.info("the run launcher refused a run: %s", message["refused"])
            if message.get("stale") and self._process is not None:
                # Its code is stale: end it; the next one imports the new code.
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
            raise Refused(message["refused"])
        launched = LaunchedProcess(pid=message["pid"])
        self._launched[request_id] = launched
        return launched

    async def close(self) -> None:
        self._closing = True
        if self._writer is not None:
            self._writer.close()  # the launcher exits on end of file
        if self._process is not None and self._process.returncode is None:
            with anyio.move_on_after(5):
                await self._process.wait()
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()


async def _watch_exit(launched: LaunchedProcess) -> None:
    try:
        pidfd = os.pidfd_open(launched.pid)
    except ProcessLookupError:
        launched.end(-1)
        return
    try:
        await anyio.wait_readable(pidfd)
    finally:
        os.close(pidfd)
    launched.end(-1)


def launchable(argv: list[str], env: Mapping[str, str | None]) -> bool:
    """Whether the launcher can run this command as its own: `python -m MODULE …` where
    `python` is this worker's interpreter on the run's PATH (a fresh process would start
    the same program)."""
    if len(argv) < 3 or argv[1] != "-m":
        return False
    found = shutil.which(argv[0], path=env.get("PATH") or os.defpath)
    if found is None:
        return False
    # The same program in the same folder: a `python` of another environment may be a link
    # to the same binary, and still see other packages.
    ours = Path(sys.executable).absolute()
    return Path(found).absolute().parent == ours.parent and os.path.samefile(found, ours)


class LauncherStarter(EngineCommandStarter):
    """Prefect's engine-command starter, asking the launcher for the process first."""

    def __init__(self, launcher: Launcher | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._launcher = launcher

    async def start(
        self,
        flow_run: FlowRun,
        task_status: anyio.abc.TaskStatus[ProcessHandle] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        launched = await self._launch(flow_run)
        if launched is None:
            await super().start(flow_run, task_status=task_status)
            return
        task_status.started(ProcessHandle(launched))  # type: ignore[arg-type]
        await launched.wait()

    async def _launch(self, flow_run: FlowRun) -> LaunchedProcess | None:
        if self._launcher is None or self._command is None:
            return None
        if not await self._launcher.ready_soon():
            return None
        env = self._run_environment(flow_run)
        argv = command_from_string(self._command)
        if not launchable(argv, env):
            return None
        control = self._control_channel
        if control is not None:
            with contextlib.suppress(RuntimeError):  # a channel that could not bind
                port, token = control.register(flow_run.id)
                env["PREFECT__CONTROL_PORT"] = str(port)
                env["PREFECT__CONTROL_TOKEN"] = token
        cwd = Path(self._cwd) if self._cwd is not None else Path.cwd()
        if self._storage is not None:
            cwd = Path(self._storage.destination)
        try:
            return await self._launcher.launch(argv, env, cwd, quiet=not self._stream_output)
        except Refused:
            if control is not None:
                control.unregister(flow_run.id)  # the ordinary start registers it again
            return None

    def _run_environment(self, flow_run: FlowRun) -> dict[str, str]:
        """The environment Prefect's `EngineCommandStarter.start` gives a run's process (the
        same variables in the same order of precedence)."""
        env: dict[str, str | None] = {**os.environ}
        settings_environment = get_current_settings().to_environment_variables(exclude_unset=True)
        if self._env_overrides_settings:
            env.update(settings_environment)
            env.update(self._env)
        else:
            env.update(self._env)
            env.update(settings_environment)
        deployment_name = (
            self._deployment_name
            if self._deployment_name is not None
            else self._env.get("PREFECT__DEPLOYMENT_NAME")
        )
        env.update(
            {
                "PREFECT__FLOW_RUN_ID": str(flow_run.id),
                "PREFECT__ENABLE_CANCELLATION_AND_CRASHED_HOOKS": "false",
                "PREFECT__DEPLOYMENT_NAME": deployment_name,
            }
        )
        if self._tmp_dir is not None:
            env["PREFECT__STORAGE_BASE_PATH"] = str(self._tmp_dir)
        if self._entrypoint:
            env["PREFECT__FLOW_ENTRYPOINT"] = self._entrypoint
        if self._heartbeat_seconds is not None:
            env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] = str(int(self._heartbeat_seconds))
        return sanitize_subprocess_env(env)
