"""Detached background processes tracked by pid files in the data folder.

`up` must be safe to run twice and `down` must stop exactly what `up` started, so each
component is a process group whose leader's pid is written beside its log.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from automates.process_group import terminate_groups

# running: the pid file names a live process; dead: it names a process that is gone (the
# component was started and never stopped, so it should be running); stopped: no pid file.
State = Literal["running", "dead", "stopped"]


@dataclass(frozen=True)
class Managed:
    """A background component: its pid file and its log file."""

    name: str
    run_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of the running component, or None (a stale pid file is removed)."""
        state, pid = self.state()
        if state == "running":
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def state(self) -> tuple[State, int | None]:
        """Whether the component runs, died, or was stopped, and the pid its file names.

        Reads only: a dead component's pid file stays, so that `status` keeps saying it is
        dead until `up` restarts it (or `down` clears it).
        """
        try:
            pid = int(self.pid_file.read_text().strip())
        except FileNotFoundError:
            return "stopped", None
        except ValueError:  # a torn or foreign pid file: nothing we can find
            return "dead", None
        return ("running" if _alive(pid) else "dead"), pid

    def start(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: `down` stops its children too
            )
        self.pid_file.write_text(str(process.pid))
        return process.pid

    def stop(self, grace_seconds: float = 15.0) -> bool:
        """Stop the component's process group; return whether it was running."""
        return bool(stop_together([self], grace_seconds))

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def stop_together(components: Sequence[Managed], grace_seconds: float = 15.0) -> list[Managed]:
    """Stop independent components at once (each is asked, then all are waited for, then
    any still there is killed); return those that were running."""
    running = [(c, pid) for c in components if (pid := c.pid()) is not None]
    terminate_groups([pid for _, pid in running], grace_seconds)
    for component, _ in running:
        component.pid_file.unlink(missing_ok=True)
    return [component for component, _ in running]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    with contextlib.suppress(ChildProcessError):
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == pid:
            return False
    return True
