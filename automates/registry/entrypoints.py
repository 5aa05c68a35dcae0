"""What an entrypoint points at: the file, the flow it defines, whether it imports.

The reference system's worst silent failure was a scheduled line pointing at a script that no
longer existed. Files and flow functions are checked statically (no import, fast, safe) before
anything is synced; `probe_imports` really imports them, in a child process, for reconcile.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from automates.errors import DeclarationProblem
from automates.registry.model import Automate, Registry


@dataclass(frozen=True)
class FlowTarget:
    """The flow an entrypoint names, read from its source without importing it."""

    flow_name: str
    parameter_schema: dict[str, Any]


# An interpreter whose first argument is the script it runs: `[python3, path/x.py]`.
_INTERPRETER = re.compile(r"^(python[\d.]*|node|nodejs|bash|sh|dash|zsh|perl|ruby|php)$")


def static_problems(registry: Registry, root: Path) -> list[DeclarationProblem]:
    """Entrypoints whose file is missing or lacks the named flow; runbooks that do not exist.

    A disabled script automate whose command is missing is not refused: it never runs, and
    sync deploys it paused (a crontab's broken line, imported disabled). `static_warnings`
    names it, and reconcile reports it broken."""
    return [p for automate in registry.automates for p in static_problems_of(automate, root)]


def static_warnings(registry: Registry, root: Path) -> list[DeclarationProblem]:
    """The disabled script automates whose command is missing: accepted, but said."""
    return [
        DeclarationProblem(automate.name, "command", error)
        for automate in registry.automates
        if _missing_tolerated(automate) and (error := static_error(automate, root)) is not None
    ]


def _missing_tolerated(automate: Automate) -> bool:
    # A flow's entrypoint is read by sync (its flow name and parameters); a command is not.
    return automate.is_script and not automate.enabled


def static_problems_of(automate: Automate, root: Path) -> list[DeclarationProblem]:
    problems = []
    error = static_error(automate, root)
    if error is not None and not _missing_tolerated(automate):
        field = "command" if automate.is_script else "entrypoint"
        problems.append(DeclarationProblem(automate.name, field, error))
    problems.extend(
        DeclarationProblem(automate.name, "env_files", f"file {name} does not exist")
        for name in automate.env_files
        if not (root / name).is_file()
    )
    if automate.runbook and not (root / automate.runbook).is_file():
        problems.append(
            DeclarationProblem(automate.name, "runbook", f"file {automate.runbook} does not exist")
        )
    return problems


def static_error(automate: Automate, root: Path) -> str | None:
    """Why the entrypoint cannot run, judged from the source alone; None if it looks right."""
    if automate.command is not None:
        error = _command_error(automate.command, root)
        if error is None and automate.once is not None:
            error = _command_error(automate.once, root)
            return None if error is None else f"once: {error}"
        return error
    path = root / automate.entrypoint_path
    if not path.is_file():
        return f"file {automate.entrypoint_path} does not exist"
    function = automate.flow_function
    if function is None:
        return None
    try:
        _flow_decorator(path, function)
    except LookupError as error:
        return str(error)
    return None


def _command_error(argv: tuple[str, ...], root: Path) -> str | None:
    """The executable must exist and be executable (or be on PATH); an interpreter's script,
    given as a path right after it (`[python3, jobs/x.py]`), must exist."""
    executable = argv[0]
    if "/" in executable:
        path = root / executable
        if not path.is_file():
            return f"file {executable} does not exist"
        if not os.access(path, os.X_OK):
            return f"file {executable} is not executable (chmod +x)"
    elif shutil.which(executable) is None:
        return f"{executable!r} is not on PATH"
    script = argv[1] if len(argv) > 1 else ""
    interpreted = _INTERPRETER.match(PurePosixPath(executable).name) is not None
    if interpreted and "/" in script and not script.startswith("-"):
        return None if (root / script).is_file() else f"file {script} does not exist"
    return None


def flow_target(automate: Automate, root: Path) -> FlowTarget:
    """The flow name and parameter schema of a (statically valid) flow entrypoint."""
    if automate.is_script:  # the guard's own flow, from the installed package
        module, function = automate.flow_entrypoint.split(":")
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin is not None
        return _flow_target(spec.origin, function)
    assert automate.flow_function is not None
    return _flow_target(str(root / automate.entrypoint_path), automate.flow_function)


@lru_cache(maxsize=512)
def _flow_target(path: str, function: str) -> FlowTarget:
    # Prefect's own static readers: the same name and schema `prefect deploy` would compute.
    from prefect.utilities.callables import parameter_schema_from_entrypoint

    decorator = _flow_decorator(Path(path), function)
    name = function.replace("_", "-")
    if isinstance(decorator, ast.Call):
        for keyword in decorator.keywords:
            if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                name = str(keyword.value.value)
    schema = parameter_schema_from_entrypoint(f"{path}:{function}").model_dump_for_openapi()
    if not schema.get("definitions"):
        del schema["definitions"]  # as `prefect deploy` sends it, so both deploy the same
    return FlowTarget(flow_name=name, parameter_schema=schema)


def _flow_decorator(path: Path, function: str) -> ast.expr:
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as error:
        raise LookupError(f"{path.name} has a syntax error at line {error.lineno}") from None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if getattr(target, "id", None) == "flow" or getattr(target, "attr", None) == "flow":
                    return decorator
            raise LookupError(f"{function}() in {path.name} is not decorated with @flow")
    raise LookupError(f"{path.name} defines no function {function}()")


def probe_imports(entrypoints: list[str], root: Path, timeout: float = 120.0) -> dict[str, str]:
    """Import each entrypoint in one child process; map each that fails to its error."""
    if not entrypoints:
        return {}
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "automates.registry.probe", *entrypoints],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return dict.fromkeys(entrypoints, f"importing took longer than {timeout:.0f} s")
    try:
        failures: dict[str, str] = json.loads(completed.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        detail = completed.stderr.strip().splitlines()[-1:] or ["no output"]
        return dict.fromkeys(entrypoints, f"import probe crashed: {detail[0]}")
    return failures
