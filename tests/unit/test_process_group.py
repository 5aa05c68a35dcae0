"""terminate_group against real process groups: SIGTERM, the grace, SIGKILL, the reap."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from automates.process_group import Leader, group_alive, terminate_group, terminate_groups

# Each child says "ready" once its signal handling is in place, so no test races its start.
IGNORES_SIGTERM = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(120)\n"
)
OBEYS_SIGTERM = "import time\nprint('ready', flush=True)\ntime.sleep(120)\n"
# A leader that obeys SIGTERM, with a grandchild in its group that ignores it.
LEADS_A_STUBBORN_GRANDCHILD = (
    "import subprocess, sys, time\n"
    f"child = subprocess.Popen([sys.executable, '-c', {IGNORES_SIGTERM!r}],\n"
    "                         stdout=subprocess.PIPE)\n"
    "assert child.stdout.readline().strip() == b'ready'\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(120)\n"
)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """The groups a test starts; any it leaves behind is killed."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if group_alive(process.pid):
            subprocess.run(["kill", "-KILL", f"-{process.pid}"], check=False)
        process.wait()


def start(started: list[subprocess.Popen[str]], script: str) -> tuple[subprocess.Popen[str], str]:
    """A process leading its own group, and its first line (read once it is ready)."""
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    started.append(process)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def seconds_to_end(target: Leader, grace_seconds: float) -> float:
    """How long terminate_group took to end `target`'s group: the grace is waited out only
    for a group that ignores SIGTERM."""
    began = time.monotonic()
    terminate_group(target, grace_seconds=grace_seconds)
    return time.monotonic() - began


def running(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def test_a_leader_that_obeys_sigterm_ends_without_waiting_the_grace(
    started: list[subprocess.Popen[str]],
) -> None:
    process, _ = start(started, OBEYS_SIGTERM)
    assert seconds_to_end(process, grace_seconds=60) < 30
    assert process.returncode == -signal.SIGTERM  # reaped through its Popen


def test_a_leader_that_ignores_sigterm_is_killed_after_the_grace(
    started: list[subprocess.Popen[str]],
) -> None:
    process, _ = start(started, IGNORES_SIGTERM)
    assert seconds_to_end(process, grace_seconds=0.5) >= 0.5
    assert process.returncode == -signal.SIGKILL
    assert not group_alive(process.pid)


def test_a_grandchild_that_outlives_its_leader_is_killed_with_the_group(
    started: list[subprocess.Popen[str]],
) -> None:
    process, line = start(started, LEADS_A_STUBBORN_GRANDCHILD)
    grandchild = int(line)
    assert running(grandchild)
    terminate_group(process, grace_seconds=0.5)
    assert process.returncode == -signal.SIGTERM
    assert not running(grandchild)
    assert not group_alive(process.pid)


def test_a_bare_pid_is_ended_but_not_reaped(started: list[subprocess.Popen[str]]) -> None:
    """A leader of ours given by pid is a zombie once it ends: the group counts as empty, and
    its exit status is left to its Popen (the task run's watcher and the CLI's runner)."""
    process, _ = start(started, OBEYS_SIGTERM)
    assert seconds_to_end(process.pid, grace_seconds=60) < 30
    assert not group_alive(process.pid)
    assert process.wait() == -signal.SIGTERM


def test_groups_ended_together_share_one_grace_period(
    started: list[subprocess.Popen[str]],
) -> None:
    stubborn = [start(started, IGNORES_SIGTERM)[0] for _ in range(3)]
    began = time.monotonic()
    terminate_groups([stubborn[0], stubborn[1].pid, stubborn[2]], grace_seconds=2)
    assert time.monotonic() - began < 2 * 2  # not one grace period after another
    assert not any(group_alive(process.pid) for process in stubborn)
    assert stubborn[0].returncode == stubborn[2].returncode == -signal.SIGKILL


def test_a_group_already_gone_is_nothing_to_do(started: list[subprocess.Popen[str]]) -> None:
    process, _ = start(started, "print('ready', flush=True)")
    assert process.wait() == 0
    took = seconds_to_end(process, grace_seconds=60) + seconds_to_end(process.pid, grace_seconds=60)
    assert took < 30
    assert process.returncode == 0
