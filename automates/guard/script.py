"""The flow every script automate runs: any executable, under the guard.

The command is run without a shell, in its own process group; stdout and stderr reach the
Prefect logs line by line as they come. Exit 0 completes; a non-zero exit either means
findings (soft-fail automates, e.g. audits: state "Findings", the exit code kept) or fails the
run (and the guard may retry it). When the guard's timeout strikes, the whole process group is
killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from prefect import flow, get_run_logger
from prefect.states import Completed, State

from automates.guard import journal
from automates.guard.policy import current

TAIL_LINES = 40
KILL_GRACE_SECONDS = 5.0


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
    policy = current()
    if policy is None or not policy.command:
        raise NotDeclared("a script runs only under the guard of a declaration that names it")
    argv = list(policy.command)
    executable = argv[0]
    if "/" in executable and not os.path.isabs(executable):
        executable = str(Path.cwd() / executable)
    stderr_tail: deque[str] = deque(maxlen=TAIL_LINES)
    stdout_tail: deque[str] = deque(maxlen=TAIL_LINES)
    process = subprocess.Popen(
        [executable, *argv[1:]],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    readers = [
        threading.Thread(target=_pump, args=(process.stdout, logger.info, stdout_tail)),
        threading.Thread(target=_pump, args=(process.stderr, logger.warning, stderr_tail)),
    ]
    for reader in readers:
        reader.start()
    try:
        while True:  # short waits: a timeout raised in this thread is never held up
            try:
                exit_code = process.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                continue
    finally:
        if process.poll() is None:
            _kill_group(process)
        for reader in readers:
            reader.join(timeout=KILL_GRACE_SECONDS)
    journal.note(exit_code=exit_code, command=argv)
    run = journal.current()
    if run is not None:
        run.exit_code = exit_code
    if exit_code == 0:
        return Completed(message=f"{argv[0]} exited 0")
    if policy.soft_fail:
        _publish_findings(policy.automate, argv, exit_code, stdout_tail)
        return Completed(
            name="Findings",
            message=f"{argv[0]} exited {exit_code}: findings",
            data={"exit_code": exit_code},
        )
    raise ScriptFailed(argv, exit_code, stderr_tail)


def _pump(stream: IO[str] | None, log: object, tail: deque[str]) -> None:
    if stream is None:
        return
    for line in stream:
        line = line.rstrip("\n")
        tail.append(line)
        log(line)  # type: ignore[operator]


def _kill_group(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


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
