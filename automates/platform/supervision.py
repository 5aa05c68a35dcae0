"""Every process `automates up` starts runs under supervisord (decision 0034).

`up` writes `run/supervisord.conf` in the data folder with one program per component, starts
supervisord (itself a detached process with a pid file, like any component was before), and
starts the programs in dependency order through supervisord's XML-RPC socket. supervisord
restarts a program that exits (`autorestart`), backs off a program that dies while starting
(`startsecs`/`startretries`, ending in FATAL), and the crash watch (crash_watch.py, its event
listener) stops a program that keeps dying and raises an alert. `down` asks supervisord to
stop everything, in reverse priority order, and to exit.

Programs start with autostart off: after a reboot, `up` (the systemd unit's command) starts
them in order again, because the store's migrations run between the database and the server.
Settings are not written into the config: each Python program is started through launch.py,
which reads them (secrets included) from the environment and the env file when it starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import shlex
import tempfile
import time
import xmlrpc.client
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from automates.errors import PlatformError
from automates.platform.processes import Managed

CONFIG_NAME = "supervisord.conf"
LISTENER = "crash-watch"
# A program that exits within this many seconds of starting did not start: supervisord backs
# off (1 s, 2 s, ...) and after START_RETRIES such starts gives up (FATAL).
START_SECONDS = 3
START_RETRIES = 5
STOP_WAIT_SECONDS = 15  # then supervisord kills the program's process group
_UNIX_PATH_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin


class ProgramState(StrEnum):
    """supervisord's process states (supervisor.states.ProcessStates), lower-cased."""

    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    EXITED = "exited"
    FATAL = "fatal"
    UNKNOWN = "unknown"


# A program in these states is up or on its way up; the others need `up`.
ALIVE = frozenset({ProgramState.STARTING, ProgramState.RUNNING, ProgramState.BACKOFF})


@dataclass(frozen=True)
class Program:
    """One supervised process: what runs, as whom, in which order."""

    name: str
    argv: tuple[str, ...]
    directory: Path
    priority: int  # lower starts first and stops last
    stop_signal: str = "TERM"


def supervisor(run_dir: Path) -> Managed:
    return Managed("supervisord", run_dir)


def socket_path(run_dir: Path) -> Path:
    """The control socket: in the run folder, or under the temp folder when that path is too
    long for a Unix socket (deep data folders)."""
    path = run_dir / "supervisor.sock"
    if len(str(path)) <= _UNIX_PATH_MAX:
        return path
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"automates-{digest}.sock"


def _value(text: str) -> str:
    """A config value: supervisord expands `%(name)s` once in most values, so a literal % is
    doubled; its parser ends a value at ` ;` or ` #` (an inline comment)."""
    if any(c in text for c in "\n\r\x00") or " ;" in text or " #" in text:
        raise PlatformError(
            f"supervisord's config cannot hold {text!r}: a line break, ' ;' or ' #' in it"
        )
    return text.replace("%", "%%")


def _path(path: Path) -> str:
    """A file or folder: supervisord expands log file names twice, so no % at all."""
    if "%" in str(path):
        raise PlatformError(
            f"{path}: supervisord cannot hold a path with '%' (the data folder, "
            "AUTOMATES_DATA_DIR, and the checkout must not contain one)"
        )
    return _value(str(path))


def _command(argv: Sequence[str]) -> str:
    return _value(shlex.join(argv))


def render_config(run_dir: Path, programs: Sequence[Program], listener: Sequence[str]) -> str:
    """The supervisord config for these programs and the crash watch's command line."""
    sock = socket_path(run_dir)
    lines = [
        "; Written by `automates up` on every run: edits here are overwritten.",
        "; Inspect with: supervisorctl -c " + _path(run_dir / CONFIG_NAME) + " status",
        "[unix_http_server]",
        f"file={_path(sock)}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={_path(run_dir / 'supervisord.log')}",
        "logfile_maxbytes=10MB",
        "logfile_backups=3",
        f"pidfile={_path(run_dir / 'supervisord.daemon.pid')}",
        f"childlogdir={_path(run_dir)}",
        "nodaemon=true",
        "silent=true",  # its log goes to logfile only, not also to its stdout
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_path(sock)}",
        "",
        f"[eventlistener:{LISTENER}]",
        f"command={_command(listener)}",
        "events=PROCESS_STATE,TICK_60",
        "buffer_size=256",
        "autostart=true",
        "autorestart=true",
        "priority=1",
        "stdout_logfile=NONE",  # its stdout is the event protocol's channel
        f"stderr_logfile={_path(run_dir / (LISTENER + '.log'))}",
        "stderr_logfile_maxbytes=10MB",
        "",
    ]
    for program in programs:
        lines += [
            f"[program:{program.name}]",
            f"command={_command(program.argv)}",
            f"directory={_path(program.directory)}",
            f"priority={program.priority}",
            "autostart=false",
            "autorestart=true",
            f"startsecs={START_SECONDS}",
            f"startretries={START_RETRIES}",
            f"stopsignal={program.stop_signal}",
            f"stopwaitsecs={STOP_WAIT_SECONDS}",
            # A program's children (a worker's flow runs, the server's services) stop with it.
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_path(run_dir / (program.name + '.log'))}",
            "stdout_logfile_maxbytes=10MB",
            "stdout_logfile_backups=3",
        ]
        lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True)
class ProgramInfo:
    name: str
    state: ProgramState
    pid: int | None
    started_at: float | None  # epoch seconds of the current start, while it runs
    detail: str  # supervisord's description: "pid 12, uptime 0:01:02", "Exited too quickly"

    @classmethod
    def from_rpc(cls, info: dict[str, Any]) -> ProgramInfo:
        try:
            state = ProgramState(str(info.get("statename", "")).lower())
        except ValueError:
            state = ProgramState.UNKNOWN
        running = state in (ProgramState.RUNNING, ProgramState.STARTING, ProgramState.STOPPING)
        return cls(
            name=str(info["name"]),
            state=state,
            pid=int(info["pid"]) if info.get("pid") else None,
            started_at=float(info["start"]) if running and info.get("start") else None,
            detail=str(info.get("description", "")),
        )


# Every call to supervisord gives up after this long (a stop waits for the process to end,
# within its stopwaitsecs); whether it answers at all, after ANSWER_TIMEOUT_SECONDS.
RPC_TIMEOUT_SECONDS = 120.0
ANSWER_TIMEOUT_SECONDS = 10.0


class Supervisor:
    """supervisord of one data folder, driven through its XML-RPC socket."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.config = run_dir / CONFIG_NAME
        self.process = supervisor(run_dir)

    def _proxy(self, timeout: float = RPC_TIMEOUT_SECONDS) -> Any:
        from supervisor.xmlrpc import SupervisorTransport, UnixStreamHTTPConnection

        path = str(socket_path(self.run_dir))

        class TimedConnection(UnixStreamHTTPConnection):
            # supervisor's own connection has no timeout: a hung supervisord would hang us.
            def connect(self) -> None:
                super().connect()
                self.sock.settimeout(timeout)

        def connection() -> TimedConnection:
            made = TimedConnection("localhost")
            made.socketfile = path
            return made

        transport = SupervisorTransport(None, None, f"unix://{path}")
        transport._get_connection = connection
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def answering(self) -> bool:
        if self.process.pid() is None:
            return False
        try:
            state = self._proxy(timeout=ANSWER_TIMEOUT_SECONDS).getState()
            return bool(state["statename"] == "RUNNING")
        except (OSError, xmlrpc.client.Error):
            return False

    def write_config(self, text: str) -> bool:
        """Write the config; whether it changed."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.config.exists() and self.config.read_text() == text:
            return False
        partial = self.config.with_suffix(".partial")
        partial.write_text(text)
        partial.chmod(0o600)
        partial.replace(self.config)
        return True

    def start(self, argv: Sequence[str], env: dict[str, str], cwd: Path, timeout: float) -> bool:
        """Start supervisord on the written config unless it answers; whether it started."""
        if self.answering():
            return False
        if self.process.pid() is not None:  # started and not yet answering, or hung
            self.process.stop()
        socket_path(self.run_dir).unlink(missing_ok=True)
        self.process.start([*argv, "-c", str(self.config)], env, cwd)
        deadline = time.monotonic() + timeout
        while not self.answering():
            if self.process.pid() is None:
                raise PlatformError(f"supervisord exited at start:\n{self.process.log_tail()}")
            if time.monotonic() > deadline:
                self.process.stop()
                raise PlatformError(
                    f"supervisord did not answer after {timeout:.0f} s:\n{self.process.log_tail()}"
                )
            time.sleep(0.2)
        return True

    def apply_config(self) -> None:
        """Make the running supervisord match the config file (what `supervisorctl update`
        does): removed programs stop and go, changed ones are replaced, new ones are added."""
        proxy = self._proxy()
        added, changed, removed = proxy.reloadConfig()[0]
        for name in [*removed, *changed]:
            self._stop_group(proxy, name)
            proxy.removeProcessGroup(name)
        for name in [*changed, *added]:
            proxy.addProcessGroup(name)

    @staticmethod
    def _stop_group(proxy: Any, name: str) -> None:
        try:
            proxy.stopProcessGroup(name, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise

    def programs(self) -> dict[str, ProgramInfo]:
        """Every program and its state (the crash watch excluded)."""
        found = [ProgramInfo.from_rpc(info) for info in self._proxy().getAllProcessInfo()]
        return {info.name: info for info in found if info.name != LISTENER}

    def start_program(self, name: str) -> bool:
        """Start a program unless it is up or on its way up; whether it was started."""
        proxy = self._proxy()
        state = ProgramInfo.from_rpc(proxy.getProcessInfo(name)).state
        if state in ALIVE:
            return False
        try:
            proxy.startProcess(name, False)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise PlatformError(
                    f"supervisord could not start {name}: {fault.faultString}"
                ) from fault
        return True

    def wait_running(self, names: Sequence[str], timeout: float) -> None:
        """Wait until each program is RUNNING (it outlived START_SECONDS); a program that went
        FATAL or did not get there in time is an error with its log's tail."""
        deadline = time.monotonic() + timeout
        pending = list(names)
        while pending:
            programs = self.programs()
            for name in list(pending):
                state = programs[name].state
                if state == ProgramState.RUNNING:
                    pending.remove(name)
                elif state in (ProgramState.FATAL, ProgramState.STOPPED):
                    raise PlatformError(
                        f"{name} could not start ({programs[name].detail}):\n"
                        f"{Managed(name, self.run_dir).log_tail()}"
                    )
            if pending and time.monotonic() > deadline:
                raise PlatformError(
                    f"{', '.join(pending)} did not start within {timeout:.0f} s; see "
                    f"{self.run_dir}/<name>.log"
                )
            if pending:
                time.sleep(0.2)

    def stop_program(self, name: str) -> None:
        proxy = self._proxy()
        try:
            proxy.stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise

    def shutdown(self) -> set[str]:
        """Stop every program (reverse priority order) and supervisord; the programs that were
        up. supervisord gives each program STOP_WAIT_SECONDS before it kills its group."""
        if not self.answering():
            self.process.stop()
            return set()
        programs = self.programs()
        up = {
            name
            for name, info in programs.items()
            if info.state in ALIVE or info.state == ProgramState.STOPPING
        }
        with contextlib.suppress(OSError, xmlrpc.client.Error):  # it may be going already
            self._proxy().shutdown()
        grace = STOP_WAIT_SECONDS * (len(programs) + 1) + 5.0
        pid = self.process.pid()
        deadline = time.monotonic() + grace
        while pid is not None and self.process.pid() is not None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.process.stop()  # gone already, or killed now
        socket_path(self.run_dir).unlink(missing_ok=True)
        return up
