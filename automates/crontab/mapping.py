"""The operator's mapping file: which family and caste each imported command belongs to.

    rules:
      - command: "*/ac_backup*"      # a glob on the declared command (its words joined by spaces)
        family: backups
        caste: horlogers
      - command: "*/curl *"
        family: http

The first rule whose `command` matches gives the family and/or the caste; what it leaves out
falls back to --family/--caste, else `unclassified`. Rules are matched against the command as
it is declared (absolute paths, unwrapped), so one mapping serves every crontab of a machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path

import yaml
from pydantic import Field, ValidationError, model_validator

from automates.crontab.lines import CrontabError
from automates.fields import FieldError, Frozen
from automates.registry.fields import Slug
from automates.registry.loader import BoundedLoader, problem_of

MAX_MAPPING_BYTES = 1024 * 1024
MAX_RULES = 1000


class Rule(Frozen):
    command: str = Field(min_length=1, description="A glob on the declared command.")
    family: Slug | None = None
    caste: Slug | None = None

    @model_validator(mode="after")
    def _gives_something(self) -> Rule:
        if self.family is None and self.caste is None:
            raise FieldError("family", "a rule gives a family, a caste, or both")
        return self

    def matches(self, argv: Sequence[str]) -> bool:
        return fnmatchcase(" ".join(argv), self.command)


class FamilyMap(Frozen):
    rules: tuple[Rule, ...] = Field(max_length=MAX_RULES)

    def rule_for(self, argv: Sequence[str]) -> int | None:
        """The index of the first rule matching the command, if any."""
        return next((i for i, rule in enumerate(self.rules) if rule.matches(argv)), None)


def load_mapping(path: Path) -> FamilyMap:
    """The mapping file, or a CrontabError naming the rule and field that is wrong."""
    where = f"--mapping {path}"
    try:
        with path.open("rb") as file:
            data = file.read(MAX_MAPPING_BYTES + 1)
    except OSError as error:
        raise CrontabError(f"{where}: {error.strerror or error}; nothing was imported") from None
    if len(data) > MAX_MAPPING_BYTES:
        raise CrontabError(f"{where}: larger than {MAX_MAPPING_BYTES} bytes")
    try:
        document = yaml.load(data.decode("utf-8"), Loader=BoundedLoader)
    except UnicodeDecodeError as error:
        raise CrontabError(f"{where}: not UTF-8 (byte at offset {error.start})") from None
    except yaml.YAMLError as error:
        raise CrontabError(f"{where}: not YAML: {' '.join(str(error).split())}") from None
    if not isinstance(document, dict):
        raise CrontabError(f"{where}: must be a mapping with one key, rules")
    try:
        return FamilyMap.model_validate(document)
    except ValidationError as error:
        problems = [problem_of(d["loc"], d) for d in error.errors()]
        shown = "; ".join(f"field {field}: {message}" for field, message in problems)
        raise CrontabError(f"{where}: {shown}; nothing was imported") from None
