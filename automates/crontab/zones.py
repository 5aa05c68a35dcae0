"""The timezone a crontab's schedules fire in: CRON_TZ or TZ in the file, else the operator's
--timezone, else this machine's zone, always an IANA name the registry accepts."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from automates.crontab.lines import CrontabError


def checked_zone(value: str, field: str, line: int | None = None) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        where = f"line {line}, field {field}" if line is not None else field
        raise CrontabError(
            f"{where}: {value!r} is not an IANA timezone (e.g. 'Asia/Makassar'); "
            "nothing was imported"
        ) from None
    return value


@cache
def machine_zone() -> str:
    """This machine's IANA zone: $TZ, /etc/timezone, or where /etc/localtime points."""
    candidates = [os.environ.get("TZ", "").removeprefix(":")]
    timezone_file = Path("/etc/timezone")
    if timezone_file.is_file():
        candidates.append(timezone_file.read_text().strip())
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    for candidate in candidates:
        if candidate:
            try:
                ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                continue
            return candidate
    raise CrontabError(
        "this machine's timezone cannot be told from TZ, /etc/timezone or /etc/localtime; "
        "give --timezone"
    )
