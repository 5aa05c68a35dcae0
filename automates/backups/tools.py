"""The PostgreSQL client programs a backup or a restore runs, and how they are run.

Two sets may be at hand: the embedded wheel's (PostgreSQL 18) and the machine's on PATH. The
wheel's is preferred, but a program must fit the server it talks to: pg_dump refuses a server
newer than itself, and a newer pg_restore writes settings an older server rejects (pg_restore
18 sends `SET transaction_timeout`, which PostgreSQL 15 refuses). So each operation takes the
program of the server's own major version when one is at hand, else the nearest newer one.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from automates.errors import BackupError
from automates.store import embedded_pg
from automates.store.urls import mask_passwords

_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")


@dataclass(frozen=True)
class Program:
    """One client program at hand, with its major version."""

    path: Path
    major: int


@functools.cache
def _at_hand(name: str) -> tuple[Program, ...]:
    """`name` in the embedded wheel's folder, then on PATH, each with its major version."""
    found: list[Program] = []
    candidates = [embedded_pg.client_bin() / name]
    on_path = shutil.which(name)
    if on_path is not None:
        candidates.append(Path(on_path))
    for path in candidates:
        if not path.is_file() or any(p.path.resolve() == path.resolve() for p in found):
            continue
        answer = subprocess.run([str(path), "--version"], capture_output=True, text=True)
        match = _VERSION.search(answer.stdout)
        if answer.returncode == 0 and match:
            found.append(Program(path, int(match.group(1))))
    return tuple(found)


def program(name: str, server_version_num: int) -> Program:
    """The `name` (pg_dump, pg_restore) that fits a server of `server_version_num` (180006)."""
    major = server_version_num // 10000
    programs = _at_hand(name)
    fitting = sorted((p for p in programs if p.major >= major), key=lambda p: p.major)
    if not fitting:
        have = ", ".join(f"{p.path} ({p.major})" for p in programs) or "none"
        raise BackupError(
            f"no {name} of PostgreSQL {major} or newer is at hand (found: {have}): install the "
            f"PostgreSQL {major} client programs (e.g. postgresql-client-{major})"
        )
    return fitting[0]


def start(argv: Sequence[str], environment: Mapping[str, str]) -> subprocess.Popen[str]:
    """Start a client program, its output captured.

    Started through util-linux's `setpriv --pdeathsig KILL` where it is installed: if the run
    that started it is killed (SIGKILL, the OOM killer), the kernel ends the program too, and
    nothing keeps writing a dump no one will finish.
    """
    setpriv = shutil.which("setpriv")
    prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
    return subprocess.Popen(
        [*prefix, *argv],
        env={**os.environ, **environment},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )


def finish(process: subprocess.Popen[str], what: str) -> str:
    """Wait for a started program; its output, or `BackupError` with its last words."""
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        said = " ".join(stderr.strip().splitlines()[-3:]) or f"exit code {process.returncode}"
        raise BackupError(f"{what} failed: {mask_passwords(said)}")
    return stdout


def run(argv: Sequence[str], environment: Mapping[str, str], what: str) -> str:
    """Run a client program to its end (see `start`); its output."""
    return finish(start(argv, environment), what)
