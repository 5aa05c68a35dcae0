"""Loading env files without overwriting what the environment already says.

The reference system's wrapper loads its env files "without overwriting variables already
present": an operator's explicit `export` always wins over a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from dotenv import dotenv_values


def load_env_files(paths: Iterable[Path]) -> list[str]:
    """Set each variable of each existing file unless already set; return the names set.

    Earlier files win over later ones, and the process environment wins over all.
    """
    loaded: list[str] = []
    for path in paths:
        if not path.is_file():
            continue
        for key, value in dotenv_values(path).items():
            if value is None or key in os.environ:
                continue
            os.environ[key] = value
            loaded.append(key)
    return loaded
