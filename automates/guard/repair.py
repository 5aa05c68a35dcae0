"""Self-repair: classify a failure into a known environmental class, apply a safe fix.

The reference system's wrapper read stderr, guessed the cause and fixed what it could before one
retry. The classes here, and the only fixes ever applied:

- missing-directory: a path's folder does not exist. Created, but only inside the data folder;
  anywhere else the fix is refused (and said so).
- unwritable-log: a log cannot be written. The run's log folder (AUTOMATES_LOG_DIR, which the
  guard gives every run) is redirected to a fresh writable folder.
- transient-network: refused or reset connections, timeouts, name resolution. No change: the
  retry itself, after its backoff, is the fix.
- missing-module: the exact install command is reported; the module is installed only if the
  settings' allowlist names it (AUTOMATES_INSTALLABLE_MODULES).

Source code is never edited. Every diagnosis and fix is journaled with the attempt.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

LOG_DIR_ENV = "AUTOMATES_LOG_DIR"

_MISSING_PATH = (
    re.compile(r"No such file or directory: '(?P<path>/[^']+)'"),
    re.compile(r"(?P<path>/[\w./-]+): No such file or directory"),
    re.compile(r"can(?:no|')t (?:open|create|write)[^/]*(?P<path>/[\w./-]+)", re.I),
)
_DENIED_LOG = re.compile(
    r"Permission denied:? '?(?P<path>/[\w./-]+\.log)"
    r"|(?P<path2>/[\w./-]+\.log)'?:? Permission denied"
)
_NETWORK = re.compile(
    r"Connection (?:refused|reset)|timed out|Temporary failure in name resolution|"
    r"Could not resolve host|Name or service not known|Network is unreachable",
    re.I,
)
_MODULE = re.compile(r"No module named '(?P<module>[\w.]+)'")


@dataclass(frozen=True)
class Diagnosis:
    kind: str
    detail: str


def diagnose(error: BaseException) -> Diagnosis | None:
    """The environmental class of a failure (exception or a script's stderr), if known."""
    text = f"{error}"
    if isinstance(error, ModuleNotFoundError) and error.name:
        return Diagnosis("missing-module", error.name.split(".")[0])
    if (match := _MODULE.search(text)) is not None:
        return Diagnosis("missing-module", match["module"].split(".")[0])
    if isinstance(error, PermissionError) and str(error.filename or "").endswith(".log"):
        return Diagnosis("unwritable-log", str(error.filename))
    if (match := _DENIED_LOG.search(text)) is not None:
        return Diagnosis("unwritable-log", match["path"] or match["path2"])
    if isinstance(error, FileNotFoundError) and error.filename:
        return Diagnosis("missing-directory", str(Path(str(error.filename)).parent))
    for pattern in _MISSING_PATH:
        if (match := pattern.search(text)) is not None:
            return Diagnosis("missing-directory", str(Path(match["path"]).parent))
    if isinstance(error, ConnectionError | TimeoutError) or _NETWORK.search(text):
        return Diagnosis("transient-network", type(error).__name__)
    return None


def repair(
    diagnosis: Diagnosis,
    *,
    data_root: Path,
    automate: str,
    installable: dict[str, str],
    variables: MutableMapping[str, str] = os.environ,
) -> tuple[str, bool]:
    """Apply the safe fix for a diagnosis: (what was done or refused, whether to retry).
    A redirected log folder is set in `variables` (the run's own, given by the guard)."""
    if diagnosis.kind == "missing-directory":
        folder = Path(diagnosis.detail).resolve()
        if not folder.is_relative_to(data_root.resolve()):
            return f"missing directory {folder}: not created (outside the data folder)", False
        if folder.exists():
            return f"{folder} exists: a missing file there is not the guard's to create", False
        folder.mkdir(parents=True)
        return f"created missing directory {folder}", True
    if diagnosis.kind == "unwritable-log":
        fallback = Path(tempfile.mkdtemp(prefix=f"{automate}-logs-", dir=_writable(data_root)))
        variables[LOG_DIR_ENV] = str(fallback)
        return f"log {diagnosis.detail} not writable: {LOG_DIR_ENV} redirected to {fallback}", True
    if diagnosis.kind == "transient-network":
        return f"transient network error ({diagnosis.detail}): retried after backoff", True
    if diagnosis.kind == "missing-module":
        module = diagnosis.detail
        package = installable.get(module)
        command = install_command(package or module)
        if package is None:
            return (
                f"missing module {module!r}: not on the install allowlist; "
                f"install it with: {' '.join(command)}",
                False,
            )
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
        if done.returncode != 0:
            return f"missing module {module!r}: `{' '.join(command)}` failed", False
        return f"installed missing module {module!r} with: {' '.join(command)}", True
    return f"no fix for {diagnosis.kind}", False


def install_command(package: str) -> list[str]:
    """The exact command that installs `package` into this run's environment."""
    uv = shutil.which("uv")
    if uv is not None:
        return [uv, "pip", "install", "--python", sys.executable, package]
    return [sys.executable, "-m", "pip", "install", package]


def _writable(data_root: Path) -> Path:
    candidate = data_root / "logs"
    try:
        candidate.mkdir(parents=True, exist_ok=True)
        if os.access(candidate, os.W_OK):
            return candidate
    except OSError:
        pass
    return Path(tempfile.gettempdir())
