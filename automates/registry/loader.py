"""Reading the registry file into validated models, collecting every problem at once.

An operator fixing a registry wants the whole list of what is wrong, not one error per try,
so each declaration is validated on its own and the problems are gathered.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from automates.errors import DeclarationError, DeclarationProblem
from automates.registry.model import Automate, Registry
from automates.scheduling.triggers import trigger_problems

REGISTRY = "<registry>"
_FIELD_PREFIX = re.compile(r"^(?:Value error, )?\[(?P<field>[\w.\[\]]+)\] (?P<message>.*)$", re.S)


def load_registry(path: Path) -> Registry:
    """Parse and validate the registry file; raise `DeclarationError` listing every problem."""
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DeclarationError(
            [DeclarationProblem(REGISTRY, "file", f"{path} not found")]
        ) from None
    except yaml.YAMLError as error:
        raise DeclarationError(
            [DeclarationProblem(REGISTRY, "file", f"not YAML: {error}")]
        ) from None
    return parse_registry(document)


def parse_registry(document: Any) -> Registry:
    if not isinstance(document, dict):
        raise DeclarationError([DeclarationProblem(REGISTRY, "file", "must be a mapping")])
    problems = [
        DeclarationProblem(REGISTRY, key, "unknown key (expected only 'automates')")
        for key in document
        if key != "automates"
    ]
    items = document.get("automates")
    if not isinstance(items, list):
        problems.append(DeclarationProblem(REGISTRY, "automates", "must be a list of automates"))
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
        return item["name"]
    return f"#{index + 1}"


def _problems(label: str, error: ValidationError) -> list[DeclarationProblem]:
    problems = []
    for detail in error.errors():
        field = _location(detail["loc"])
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
        problems.append(DeclarationProblem(label, field or "(declaration)", message))
    return problems


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
