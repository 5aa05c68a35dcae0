"""Writing an import into the registry file, and comparing a crontab with what is declared.

The registry loader reads one file and has no includes, so the declarations go into
`deployments/registry.yaml` itself, between two marker comments at the end of its `automates`
list (decision 0035). Everything outside the markers, declarations and comments alike, is left
byte for byte; the block is rewritten whole from the crontab, so importing the same crontab
twice changes nothing, and an edited crontab changes only the declarations it changed. To own
an imported declaration, move it above the block: the next import then sees it as declared.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from automates.crontab.lines import CrontabError
from automates.crontab.results import FINDINGS, Import, LineClass, LineResult
from automates.errors import DeclarationError, DeclarationProblem
from automates.limits import (
    MAX_AUTOMATES,
    MAX_REGISTRY_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
)
from automates.registry.loader import REGISTRY, BoundedLoader, parse_registry
from automates.registry.model import Automate
from automates.registry.trigger_links import trigger_problems

BEGIN = "# >>> automates import crontab: generated, each import rewrites it (crontab-import.md)"
END = "# <<< automates import crontab"
_ITEM = re.compile(r"^(?P<indent>[ \t]*)- ", re.M)
_EMPTY_LIST = re.compile(r"^automates:[ \t]*(\[[ \t]*\])?[ \t]*$", re.M)
# Reading back a text whose only new part is our own dump: libyaml when it is there.
_FAST_LOADER: type = getattr(yaml, "CSafeLoader", BoundedLoader)


@dataclass(frozen=True)
class Registry:
    """The registry file's text, split around the import block."""

    before: str
    block: str | None  # the lines between the markers, or None if there is no block yet
    after: str
    indent: str  # the indentation of the `automates` list items
    own: tuple[Automate, ...]  # the operator's declarations: every one outside the block


def read_registry(path: Path) -> Registry:
    """The registry, split around the import block. The operator's part is checked as the
    registry loader checks a file (size, UTF-8, YAML bounds, the models); the block is not
    read, since every import rewrites it whole."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_REGISTRY_BYTES + 1)
    except FileNotFoundError:
        raise _problem(f"{path} not found") from None
    except OSError as error:
        raise _problem(f"{path} cannot be read: {error.strerror or error}") from None
    if len(data) > MAX_REGISTRY_BYTES:
        raise _problem(f"larger than {MAX_REGISTRY_BYTES} bytes, the most a registry may hold")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise _problem(f"not UTF-8: byte 0x{data[error.start]:02x} at line {line}") from None
    match = _ITEM.search(text)
    indent = match["indent"] if match else "  "
    begin = _marker_line(text, BEGIN)
    if begin is None:
        before, block, after = text, None, ""
    else:
        end = _marker_line(text, END, begin[1])
        if end is None:
            raise _problem("the import block has a start marker but no end marker; restore it")
        before, block, after = text[: begin[0]], text[begin[1] : end[0]], text[end[1] :]
    document = _bounded(before + after)
    if isinstance(document, dict) and document.get("automates") is None:
        document = {**document, "automates": []}  # `automates:` with the block alone
    try:
        own = parse_registry(document).automates
    except DeclarationError:
        if block is None:
            raise
        # One of the operator's may name an imported one (`after:`): the file read whole.
        names = {item.get("name") for item in document["automates"] if isinstance(item, dict)}
        whole = parse_registry(_bounded(text)).automates
        own = tuple(a for a in whole if a.name in names)
    return Registry(before, block, after, indent, own)


def _bounded(text: str) -> Any:
    try:
        return yaml.load(text, Loader=BoundedLoader)
    except yaml.YAMLError as error:
        raise _problem(f"not YAML: {error}") from None


def _marker_line(text: str, marker: str, start: int = 0) -> tuple[int, int] | None:
    """Where the line holding `marker` starts and where the next line starts."""
    found = text.find(marker, start)
    if found < 0:
        return None
    line_start = text.rfind("\n", 0, found) + 1
    line_end = text.find("\n", found)
    return line_start, (len(text) if line_end < 0 else line_end + 1)


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, never writing an anchor or alias (the registry takes none)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_block(result: Import, indent: str) -> str:
    """The block's lines: every declaration (a broken line's is disabled; `automates validate`
    accepts a disabled script automate whose command is missing, with a warning)."""
    lines = [f"{indent}{BEGIN}"]
    for declaration in result.declarations:
        text = yaml.dump(
            [declaration], Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=96
        )
        lines += [f"{indent}{line}" if line else "" for line in text.rstrip("\n").split("\n")]
    lines.append(f"{indent}{END}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Applied:
    registry_changed: bool
    env_file_changed: bool
    written: tuple[str, ...]  # the declarations now in the block


def apply(
    result: Import, registry_path: Path, project_root: Path, current: Registry | None = None
) -> Applied:
    """Write the import's block into the registry (and its env file); nothing when the
    result is already there. `current` is the registry as read before classifying (read
    again if not given; refused if the file changed since). The new registry is checked
    whole before anything is written: its size and YAML bounds, that the block lands in the
    automates list, and the rules between declarations (the block's own declarations were
    each checked with the registry's model when classified)."""
    on_disk = read_registry(registry_path)
    if current is not None and current != on_disk:
        raise _problem("the registry changed while the crontab was imported; run it again")
    current = on_disk
    block = render_block(result, current.indent)
    before = current.before
    if current.block is None and not before.endswith("\n"):
        before += "\n"
    if not current.own:
        # A registry of no declaration of its own: `automates: []` while the block declares
        # something, `automates:` followed by the block's comments alone otherwise.
        empty = "automates:" if result.declarations else "automates: []"
        before = _EMPTY_LIST.sub(empty, before, count=1)
    text = before + block + current.after
    if len(text.encode()) > MAX_REGISTRY_BYTES:
        raise _problem(
            f"with the import block the registry would be larger than {MAX_REGISTRY_BYTES} "
            "bytes, the most it may hold (docs/registry.md#limits); nothing was changed"
        )
    _check_landed(text, [*(a.name for a in current.own), *(a.name for a in result.automates)])
    _check_whole((*current.own, *result.automates))
    env_changed = False
    if result.env_file is not None:
        env_changed = _write_if_changed(project_root / result.env_file, _env_text(result.env))
    old = registry_path.read_text()
    changed = text != old
    if changed:
        _write_if_changed(registry_path, text)
    return Applied(changed, env_changed, tuple(d["name"] for d in result.declarations))


def _check_landed(text: str, expected: list[str]) -> None:
    """The new text read back: within the registry's YAML bounds, and its automates list
    holds exactly the expected declarations."""
    try:
        document = yaml.load(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        document = None
    items = document.get("automates") if isinstance(document, dict) else None
    names = [i.get("name") for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    if sorted(map(str, names)) != sorted(expected):
        raise _problem(
            "the import block would not land inside the automates list (is it the last key, "
            "written as a block list?); nothing was changed"
        )
    nodes, depth = _shape(document)
    if nodes > MAX_YAML_NODES or depth > MAX_YAML_DEPTH:
        raise _problem(
            f"with the import block the registry would hold {nodes} YAML nodes {depth} levels "
            f"deep, past its bounds ({MAX_YAML_NODES} nodes, {MAX_YAML_DEPTH} levels); nothing "
            "was changed"
        )


def _shape(document: Any) -> tuple[int, int]:
    """The YAML nodes of a document read without aliases (every mapping key, value, list
    item and the root), and its depth, as the registry loader counts them."""
    nodes, deepest = 0, 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        deepest = max(deepest, depth)
        if isinstance(value, dict):
            nodes += len(value)  # the keys: scalars
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return nodes, deepest


def _check_whole(automates: tuple[Automate, ...]) -> None:
    """What the registry checks between declarations: their number, unique names, `after`
    triggers naming one that runs."""
    problems = []
    if len(automates) > MAX_AUTOMATES:
        problems.append(
            DeclarationProblem(
                REGISTRY,
                "automates",
                f"{len(automates)} automates with the import, at most {MAX_AUTOMATES} are "
                "accepted; nothing was changed",
            )
        )
    counts = Counter(a.name for a in automates)
    problems += [
        DeclarationProblem(name, "name", f"declared {n} times; names must be unique")
        for name, n in counts.items()
        if n > 1
    ]
    problems += trigger_problems(automates)
    if problems:
        raise DeclarationError(problems)


def unrepresented(result: Import, declared: tuple[Automate, ...]) -> list[LineResult]:
    """The lines of a crontab still in service that the registry does not represent yet.

    `result` must be classified against the enabled declarations (Options.existing), so a
    line whose command and schedule a declaration has is a duplicate. What is left is every
    active job, restart net and finding, unless a declaration's description quotes the line
    (how an operator marks a line handled by hand)."""
    quoted = [a.description for a in declared if a.enabled]
    pending = FINDINGS | {LineClass.JOB, LineClass.RESTART_NET}
    return [
        line
        for line in result.lines
        if line.enabled
        and line.line_class in pending
        and not any(line.text.strip() in description for description in quoted)
    ]


def _env_text(env: Mapping[str, str]) -> str:
    lines = ["# The imported crontab's variables (automates import crontab); no secrets in git"]
    for name, value in env.items():
        if "'" not in value:
            lines.append(f"{name}='{value}'")
        else:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'{name}="{escaped}"')
    return "\n".join(lines) + "\n"


def _write_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def _problem(message: str) -> DeclarationError:
    return DeclarationError([DeclarationProblem(REGISTRY, "file", message)])


__all__ = ["BEGIN", "END", "Applied", "CrontabError", "apply", "read_registry", "unrepresented"]
