"""Memory and CPU of process trees, read from /proc: what a worker and its children (the run
launcher, the runs' processes) cost, and the layer's whole footprint.

RSS counts every page a process has mapped in, so pages a forked child shares with its
parent count in both; PSS (from smaps_rollup) shares each page among the processes mapping
it. Budgets here are on RSS, the larger figure; PSS is reported beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces): field 3 onwards."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def tree(root: int) -> list[int]:
    """`root` and every live descendant of it."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(_stat_fields(int(entry))[1])
            except (OSError, IndexError, ValueError):
                continue  # ended while we looked
            parents.setdefault(parent, []).append(int(entry))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(parents.get(pid, []))
    return found


def cpu_seconds(root: int) -> float:
    """user + system CPU of the tree under `root`: each live process's own (utime, stime) and
    that of its children it reaped (cutime, cstime), so runs that ended still count."""
    ticks = 0
    for pid in tree(root):
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        ticks += sum(int(fields[index]) for index in (11, 12, 13, 14))  # fields 14 to 17
    return ticks / CLOCK_TICKS


def memory_mib(roots: list[int]) -> dict[str, float]:
    """RSS and PSS, in MiB, summed over the trees under `roots`, and how many processes."""
    rss = pss = 0
    processes = 0
    for pid in {pid for root in roots for pid in tree(root)}:
        try:
            rss += int(_stat_fields(pid)[21]) * PAGE_BYTES  # field 24: resident pages
            pss += _pss_bytes(pid)
            processes += 1
        except OSError:
            continue
    return {"rss_mib": round(rss / MIB, 1), "pss_mib": round(pss / MIB, 1), "processes": processes}


def _pss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0
