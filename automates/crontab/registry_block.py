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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from automates.crontab.classify import FINDINGS, Import, LineClass, LineResult
from automates.crontab.lines import CrontabError
from automates.errors import DeclarationError, DeclarationProblem
from automates.registry.loader import REGISTRY, BoundedLoader, parse_registry, read_document
from automates.registry.model import Automate

BEGIN = "# >>> automates import crontab: generated, each import rewrites it (crontab-import.md)"
END = "# <<< automates import crontab"
_ITEM = re.compile(r"^(?P<indent>[ \t]*)- ", re.M)


@dataclass(frozen=True)
class Registry:
    """The registry file's text, split around the import block."""

    before: str
    block: str | None  # the lines between the markers, or None if there is no block yet
    after: str
    indent: str  # the indentation of the `automates` list items

    def outside(self) -> tuple[Automate, ...]:
        """The declarations the operator owns: every one outside the block."""
        document = yaml.load(self.before + self.after, Loader=BoundedLoader)
        return parse_registry(document).automates


def read_registry(path: Path) -> Registry:
    """The registry, validated (models only), split around the import block."""
    read_document(path)  # its bounds: size, UTF-8, no anchors; raises DeclarationError
    text = path.read_text()
    parse_registry(yaml.load(text, Loader=BoundedLoader))
    match = _ITEM.search(text)
    indent = match["indent"] if match else "  "
    begin = _marker_line(text, BEGIN)
    if begin is None:
        return Registry(text, None, "", indent)
    end = _marker_line(text, END, begin[1])
    if end is None:
        raise _problem("the import block has a start marker but no end marker; restore it")
    return Registry(text[: begin[0]], text[begin[1] : end[0]], text[end[1] :], indent)


def _marker_line(text: str, marker: str, start: int = 0) -> tuple[int, int] | None:
    """Where the line holding `marker` starts and where the next line starts."""
    found = text.find(marker, start)
    if found < 0:
        return None
    line_start = text.rfind("\n", 0, found) + 1
    line_end = text.find("\n", found)
    return line_start, (len(text) if line_end < 0 else line_end + 1)


def render_block(result: Import, indent: str) -> str:
    """The block's lines: every declaration, then each broken line as a comment (a disabled
    declaration of a missing script would fail `automates validate`)."""
    lines = [f"{indent}{BEGIN}"]
    for declaration in result.declarations:
        text = yaml.safe_dump([declaration], sort_keys=False, allow_unicode=True, width=96)
        lines += [f"{indent}{line}" if line else "" for line in text.rstrip("\n").split("\n")]
    broken = [r for r in result.lines if r.line_class is LineClass.BROKEN]
    for line in broken:
        text = " ".join(line.text.split())
        lines.append(f"{indent}# broken, not imported: {text[:200]}: {line.reason}")
    lines.append(f"{indent}{END}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Applied:
    registry_changed: bool
    env_file_changed: bool
    written: tuple[str, ...]  # the declarations now in the block


def apply(result: Import, registry_path: Path, project_root: Path) -> Applied:
    """Write the import's block into the registry (and its env file); nothing when the
    result is already there. The new registry is validated whole before it is written."""
    current = read_registry(registry_path)
    block = render_block(result, current.indent)
    if current.block is None:
        before = current.before if current.before.endswith("\n") else current.before + "\n"
        text = before + block
    else:
        text = current.before + block + current.after
    new = parse_registry(yaml.load(text, Loader=BoundedLoader))
    expected = {a.name for a in current.outside()} | {d["name"] for d in result.declarations}
    if {a.name for a in new.automates} != expected:
        raise _problem(
            "the import block would not land inside the automates list (is it the last key, "
            "written as a block list?); nothing was changed"
        )
    env_changed = False
    if result.env_file is not None:
        env_changed = _write_if_changed(project_root / result.env_file, _env_text(result.env))
    old = registry_path.read_text()
    changed = text != old
    if changed:
        _write_if_changed(registry_path, text)
    return Applied(changed, env_changed, tuple(d["name"] for d in result.declarations))


def unrepresented(result: Import, declared: tuple[Automate, ...]) -> list[LineResult]:
    """The lines of a crontab still in service that the registry does not represent yet.

    `result` must be classified against the enabled declarations (Options.existing), so a
    line whose command and schedule a declaration has is a duplicate. What is left is every
    active job and every active finding, unless a declaration's description quotes the line
    (how an operator marks a line handled by hand)."""
    quoted = [a.description for a in declared if a.enabled]
    return [
        line
        for line in result.lines
        if line.enabled
        and (line.line_class is LineClass.JOB or line.line_class in FINDINGS)
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
