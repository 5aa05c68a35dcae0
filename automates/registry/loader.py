"""Reading the registry file into validated models, collecting every problem at once.

An operator fixing a registry wants the whole list of what is wrong, not one error per try,
so each declaration is validated on its own and the problems are gathered.

The file is read bounded (automates/limits.py): its size is checked on the bytes, it must decode
as UTF-8, and PyYAML's safe loader is narrowed to refuse anchors and aliases (an anchor bomb
expands a few lines into gigabytes), nesting deeper than the models need, and more nodes than
any real registry holds. Every refusal names the line and happens before anything is written.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from automates.errors import DeclarationError, DeclarationProblem
from automates.limits import (
    MAX_AUTOMATES,
    MAX_INT_CHARS,
    MAX_REGISTRY_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
)
from automates.registry.model import Automate, Registry
from automates.registry.trigger_links import trigger_problems
from automates.text_position import NotUtf8, utf8_text

REGISTRY = "<registry>"
_FIELD_PREFIX = re.compile(r"^(?:Value error, )?\[(?P<field>[\w.\[\]]+)\] (?P<message>.*)$", re.S)


# A label or field taken from the file is shown at most this long in a problem.
_SHOWN_CHARS = 100


class _Refused(yaml.YAMLError):
    """A YAML construct the registry does not accept, and where it is in the file."""

    def __init__(self, mark: Any, message: str) -> None:  # a yaml Mark: line and column from 0
        super().__init__(f"line {mark.line + 1}, column {mark.column + 1}: {message}")


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing what no registry needs and what makes parsing unbounded:
    anchors and aliases, nesting deeper than MAX_YAML_DEPTH, more than MAX_YAML_NODES nodes,
    and integers longer than MAX_INT_CHARS."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(event.start_mark, f"alias *{_short(event.anchor)}: {_NO_ANCHORS}")
        if getattr(event, "anchor", None) is not None:
            raise _Refused(event.start_mark, f"anchor &{_short(event.anchor)}: {_NO_ANCHORS}")
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise _Refused(event.start_mark, f"more than {MAX_YAML_NODES} YAML nodes")
        if self._depth >= MAX_YAML_DEPTH:
            raise _Refused(event.start_mark, f"nested more than {MAX_YAML_DEPTH} levels deep")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_INT_CHARS:
            raise _Refused(node.start_mark, f"an integer of more than {MAX_INT_CHARS} characters")
        return super().construct_yaml_int(node)


_NO_ANCHORS = "the registry takes no YAML anchors or aliases; write the value out in full"
BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)


def load_registry(path: Path) -> Registry:
    """Parse and validate the registry file; raise `DeclarationError` listing every problem."""
    return parse_registry(read_document(path))


def read_document(path: Path) -> Any:
    """The registry file as YAML data, read within MAX_REGISTRY_BYTES, strictly as UTF-8,
    with BoundedLoader; any refusal is a `DeclarationError` on the field `file`."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_REGISTRY_BYTES + 1)  # never more, whatever the path is
    except FileNotFoundError:
        raise _file_error(f"{path} not found") from None
    except OSError as error:
        raise _file_error(f"{path} cannot be read: {error.strerror or error}") from None
    if len(data) > MAX_REGISTRY_BYTES:
        raise _file_error(
            f"larger than {MAX_REGISTRY_BYTES} bytes ({MAX_REGISTRY_BYTES // 1024} KiB), the "
            "most a registry may hold"
        )
    try:
        text = utf8_text(data)
    except NotUtf8 as bad:
        raise _file_error(f"{bad}; save the file as UTF-8") from None
    try:
        return yaml.load(text, Loader=BoundedLoader)  # a SafeLoader subclass
    except _Refused as error:
        raise _file_error(str(error)) from None
    except yaml.YAMLError as error:
        raise _file_error(f"not YAML: {error}") from None


def _file_error(message: str) -> DeclarationError:
    return DeclarationError([DeclarationProblem(REGISTRY, "file", message)])


def parse_registry(document: Any) -> Registry:
    if not isinstance(document, dict):
        raise DeclarationError([DeclarationProblem(REGISTRY, "file", "must be a mapping")])
    problems = [
        DeclarationProblem(REGISTRY, _short(key), "unknown key (expected only 'automates')")
        for key in document
        if key != "automates"
    ]
    items = document.get("automates")
    if not isinstance(items, list):
        problems.append(DeclarationProblem(REGISTRY, "automates", "must be a list of automates"))
        raise DeclarationError(problems)
    if len(items) > MAX_AUTOMATES:
        problems.append(
            DeclarationProblem(
                REGISTRY,
                "automates",
                f"{len(items)} automates declared, at most {MAX_AUTOMATES} are accepted",
            )
        )
        raise DeclarationError(problems)

    automates: list[Automate] = []
    for index, item in enumerate(items):
        label = _label(item, index)
        try:
            automates.append(Automate.model_validate(item))
        except ValidationError as error:
            problems.extend(_problems(label, error))

    counts = Counter(_label(item, i) for i, item in enumerate(items))
    problems.extend(
        DeclarationProblem(name, "name", f"declared {n} times; names must be unique")
        for name, n in counts.items()
        if n > 1
    )
    names = [_label(item, i) for i, item in enumerate(items)]
    problems.extend(trigger_problems(automates, names))  # between declarations: `after`
    if problems:
        raise DeclarationError(problems)
    return Registry(automates=tuple(automates))


def _label(item: Any, index: int) -> str:
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return _short(item["name"])
    return f"#{index + 1}"


def _short(text: object) -> str:
    """Text from the file, as a problem shows it: cut, so one long name cannot flood output."""
    text = str(text)
    if len(text) <= _SHOWN_CHARS:
        return text
    return f"{text[:_SHOWN_CHARS]}... ({len(text)} characters)"


def _problems(label: str, error: ValidationError) -> list[DeclarationProblem]:
    return [
        DeclarationProblem(label, *problem_of(detail["loc"], detail)) for detail in error.errors()
    ]


def problems_text(error: ValidationError) -> str:
    """A validation error of one declaration-like model as one line: `field: message; ...`,
    each field named as a declaration's problem names it (a model validator's `[field]` too)."""
    return "; ".join(
        "{}: {}".format(*problem_of(detail["loc"], detail)) for detail in error.errors()
    )


def problem_of(loc: Sequence[int | str], detail: Any) -> tuple[str, str]:
    """The field (cut) and the message of one pydantic error, as a problem shows them."""
    field = _location(tuple(loc))
    message = detail["msg"]
    if detail["type"] == "extra_forbidden":
        message = "unknown key"
    elif detail["type"] == "missing":
        message = "required field is missing"
    elif (match := _FIELD_PREFIX.match(message)) is not None:
        field = ".".join(filter(None, [field, match["field"]]))
        message = match["message"]
    else:
        message = message.removeprefix("Value error, ")
    return _short(field or "(declaration)"), message


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
