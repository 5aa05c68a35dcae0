"""Ending a process group: SIGTERM, a grace period, SIGKILL, and the leader reaped.

Every process the layer starts on someone's behalf (a component of `up`, the LLM CLI, a
script or service command) leads its own process group, so that what it starts in turn (a
shell, an MCP server, a browser) ends with it. Ending one is always the same steps, written
once here:

1. SIGTERM the group, so its members can flush and exit;
2. wait until no member is left, at most `grace_seconds`;
3. SIGKILL the group if anything is still in it, and wait again until it is empty (a killed
   process ends at once, unless it is stuck in the kernel: then at most `grace_seconds` more);
4. reap the leader when the caller holds its `Popen`, through that `Popen`, so its
   `returncode` says how it ended.

A group is empty when nothing but zombies is left in it: a leader that is a child of this
process stays a zombie until its parent reaps it (the caller's `Popen`, maybe in another
thread, which must keep its exit status), and holds nothing while it waits. A leader given as
a bare pid is never reaped here, for that reason.

No caller runs in an event loop, so there is no asyncio variant.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from typing import Any

import psutil

POLL_SECONDS = 0.05

# A group's leader: a Popen of this process (reaped here), or the pid of one we do not hold
# (a pid file, a store row; never reaped here).
Leader = subprocess.Popen[Any] | int


def terminate_group(leader: Leader, grace_seconds: float) -> None:
    """End the process group `leader` leads (see the module's steps); returns once it is
    empty, or once SIGKILL has had `grace_seconds` too."""
    terminate_groups([leader], grace_seconds)


def terminate_groups(leaders: Iterable[Leader], grace_seconds: float) -> None:
    """End several process groups at once: all are asked, then all are waited for, so the
    grace periods run side by side rather than one after another."""
    leaders = list(leaders)
    groups = [_pgid(leader) for leader in leaders]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        groups = [pgid for pgid in groups if _signal(pgid, sig)]
        deadline = time.monotonic() + grace_seconds
        # Signals are delivered asynchronously: wait until the members are really gone.
        while groups := [pgid for pgid in groups if group_alive(pgid)]:
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
    for leader in leaders:
        if isinstance(leader, subprocess.Popen):
            leader.wait()


def group_alive(pgid: int) -> bool:
    """Whether the process group has a member that is not a zombie."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # members we may not signal are members all the same
    # A live leader is answer enough. Without one, the group may hold only zombies (the
    # leader, until its parent reaps it; orphans, until init does): look for a live member.
    return not _ended(pgid) or _has_live_member(pgid)


def _pgid(leader: Leader) -> int:
    # start_new_session makes the leader's pid its group's id.
    return leader.pid if isinstance(leader, subprocess.Popen) else leader


def _signal(pgid: int, sig: signal.Signals) -> bool:
    """Send `sig` to the group; whether it had members to send it to."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # see group_alive: waited for, to no avail, like any other member
    return True


def _ended(pid: int) -> bool:
    """Whether the process exited: a zombie, or gone altogether."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def _has_live_member(pgid: int) -> bool:
    for pid in psutil.pids():
        if pid == pgid:
            continue
        with contextlib.suppress(OSError):  # a pid gone since the listing
            if os.getpgid(pid) == pgid and not _ended(pid):
                return True
    return False
