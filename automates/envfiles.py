"""Loading env files without overwriting what the environment already says.

The reference system's wrapper loads its env files "without overwriting variables already
present": an operator's explicit `export` always wins over a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from dotenv import dotenv_values


def read_env_files(paths: Iterable[Path], present: Mapping[str, str]) -> dict[str, str]:
    """The variables of each existing file that `present` does not set already.

    Earlier files win over later ones, and `present` (the process environment) wins over all.
    """
    found: dict[str, str] = {}
    for path in paths:
        if not path.is_file():
            continue
        for key, value in dotenv_values(path).items():
            if value is not None and key not in present and key not in found:
                found[key] = value
    return found


def load_env_files(paths: Iterable[Path]) -> list[str]:
    """Set each variable of each existing file unless already set; return the names set."""
    found = read_env_files(paths, os.environ)
    os.environ.update(found)
    return list(found)
