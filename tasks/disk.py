"""Disk and log-size checks of the machine running the layer."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prefect import task


@dataclass(frozen=True)
class VolumeUsage:
    path: str
    total_bytes: int
    free_bytes: int

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free_bytes / self.total_bytes if self.total_bytes else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "free_percent": round(self.free_percent, 2)}


@task
def volume_usage(path: Path) -> VolumeUsage:
    usage = shutil.disk_usage(path)
    return VolumeUsage(str(path), usage.total, usage.free)


def is_log(path: Path) -> bool:
    # The embedded PostgreSQL writes its server log to a file named plainly `log`.
    return path.is_file() and (path.suffix == ".log" or path.name == "log")


@task
def oversized_logs(folder: Path, max_bytes: int) -> list[dict[str, Any]]:
    """Every log file under `folder` larger than `max_bytes`, largest first."""
    found = [
        {"path": str(log), "bytes": log.stat().st_size}
        for log in folder.rglob("*")
        if is_log(log) and log.stat().st_size > max_bytes
    ]
    return sorted(found, key=lambda entry: -entry["bytes"])


@task
def rotate_log(path: Path, keep_bytes: int) -> int:
    """Keep the last `keep_bytes` of a log in `<name>.1`, empty the log; return bytes freed.

    Copy-then-truncate: the processes writing the log (server, worker) hold it open in
    append mode, so truncating in place is the one rotation they do not notice.
    """
    size = path.stat().st_size
    with path.open("rb") as source:
        source.seek(max(0, size - keep_bytes))
        tail = source.read()
    path.with_name(path.name + ".1").write_bytes(tail)
    with path.open("r+b") as log:
        log.truncate(0)
    return size - len(tail)
