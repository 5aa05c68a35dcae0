"""A declared command running as a subprocess of a guarded run (scripts and services).

The command runs without a shell, in its own process group, stdin closed; its stdout and
stderr reach the run's log line by line as they come, and the last lines of each are kept for
the final state's message. Stopping it stops the whole group: SIGTERM, then SIGKILL.

Where util-linux's `setpriv` is installed (every Debian-like host), the command is started
through it with `--pdeathsig KILL`: if the run's process dies without a chance to stop it
(`kill -9`, the OOM killer), the kernel kills the command too, so a restarted service never
runs beside a stray copy of itself.

The command's environment is the run's (RunContext.command_environment: the process's, the
run's own variables, `PREFECT__FLOW_RUN_ID` set to its flow run's id on every worker type; the
warm worker's runs share one process, so these are set for the child only).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from automates.process_group import terminate_group

TAIL_LINES = 40
KILL_GRACE_SECONDS = 5.0
POLL_SECONDS = 0.2  # short waits: a timeout or signal raised in this thread is never held up

Log = Callable[[str], object]


def resolved(argv: Sequence[str]) -> list[str]:
    """The argv with a relative executable path made absolute against the working folder
    (the project root); a bare name is looked up on PATH by the system."""
    executable = argv[0]
    if "/" in executable and not os.path.isabs(executable):
        executable = str(Path.cwd() / executable)
    return [executable, *argv[1:]]


class Command:
    """One running command; `wait` returns its exit code, `stop` ends its process group."""

    def __init__(
        self,
        argv: Sequence[str],
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
        environment: Mapping[str, str],
        *,
        die_with_parent: bool = False,
    ) -> None:
        self.argv = list(argv)
        self.stdout_tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.stderr_tail: deque[str] = deque(maxlen=TAIL_LINES)
        prefix: list[str] = []
        setpriv = shutil.which("setpriv") if die_with_parent else None
        if setpriv is not None:
            prefix = [setpriv, "--pdeathsig", "KILL", "--"]
        self.process = subprocess.Popen(
            [*prefix, *resolved(self.argv)],
            env=dict(environment),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self._readers = [
            threading.Thread(
                target=_pump, args=(self.process.stdout, logger.info, self.stdout_tail)
            ),
            threading.Thread(
                target=_pump, args=(self.process.stderr, logger.warning, self.stderr_tail)
            ),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, deadline: float | None = None) -> int | None:
        """The exit code once the command has exited and its output is read; None if the
        monotonic `deadline` passed first (the command is left running)."""
        try:
            while True:
                try:
                    code = self.process.wait(timeout=POLL_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    if deadline is not None and time.monotonic() >= deadline:
                        return None
        except BaseException:
            self.stop()  # a signal or a timeout of the run: the command goes with it
            raise
        self._join()
        return code

    def stop(self) -> None:
        """End the command's process group: SIGTERM, then SIGKILL after a grace period."""
        if self.process.poll() is None:
            terminate_group(self.process, KILL_GRACE_SECONDS)
        self._join()

    def _join(self) -> None:
        for reader in self._readers:
            reader.join(timeout=KILL_GRACE_SECONDS)


def _pump(stream: IO[str] | None, log: Log, tail: deque[str]) -> None:
    if stream is None:
        return
    for line in stream:
        line = line.rstrip("\n")
        tail.append(line)
        log(line)
