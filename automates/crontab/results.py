"""What an import of a crontab says: each line's class and the declarations it becomes.

`classify` (automates/crontab/classify.py) builds an `Import`; the CLI prints it, and the
registry block writer (registry_block.py) turns its declarations into registry.yaml.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from automates.crontab.mapping import FamilyMap
from automates.registry.model import Automate

DEFAULT_ENV_FILE = "deployments/crontab.env"


class LineClass(StrEnum):
    JOB = "job"  # an active job: an enabled declaration
    DISABLED_JOB = "disabled_job"  # a commented-out job: a disabled declaration, never enabled
    BROKEN = "broken"  # its script or executable does not exist: a disabled declaration
    NEEDS_DECISION = "needs_decision"  # only the operator can say what it becomes
    DUPLICATE = "duplicate"  # the same job as another line, or as a declaration
    RESTART_NET = "restart_net"  # restarts a service imported from an @reboot line: nothing more
    ENV = "env"
    COMMENT = "comment"
    BLANK = "blank"
    UNPARSABLE = "unparsable"


FINDINGS = frozenset({LineClass.BROKEN, LineClass.NEEDS_DECISION, LineClass.UNPARSABLE})


@dataclass(frozen=True)
class LineResult:
    number: int
    text: str
    line_class: LineClass
    name: str | None = None  # the automate the line becomes, or is part of
    reason: str | None = None  # why no declaration: the question, what is missing
    notes: tuple[str, ...] = ()  # what changes under the layer
    enabled: bool = True  # False for a commented-out job

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.number,
            "class": self.line_class.value,
            "name": self.name,
            "reason": self.reason,
            "notes": list(self.notes),
            "text": self.text,
        }


@dataclass(frozen=True)
class Options:
    project_root: Path
    home: Path
    timezone: str | None = None  # --timezone: for lines no CRON_TZ/TZ covers
    family: str | None = None
    caste: str | None = None
    wrapper: str = "ac_cron_wrapper.py"
    env_file: str = DEFAULT_ENV_FILE
    existing: tuple[Automate, ...] = ()  # declarations the import must not duplicate
    reboot: str | None = None  # --reboot: what a lone @reboot line is (service or oneshot)
    mapping: FamilyMap | None = None  # --mapping: family and caste by command


@dataclass(frozen=True)
class Import:
    lines: tuple[LineResult, ...]
    declarations: tuple[dict[str, Any], ...]
    env: Mapping[str, str]  # what the env file holds (values are never reported)
    env_file: str | None
    family: str
    caste: str
    timezones: Mapping[str, str] = field(default_factory=dict)  # zone → where it came from
    unclassified: tuple[str, ...] = ()  # declarations whose family or caste is unclassified
    unused_rules: tuple[str, ...] = ()  # mapping rules that matched no declaration
    automates: tuple[Automate, ...] = ()  # the declarations, as the registry's model read them

    @property
    def totals(self) -> dict[str, int]:
        counts = Counter(line.line_class.value for line in self.lines)
        return {c.value: counts.get(c.value, 0) for c in LineClass}

    @property
    def findings(self) -> tuple[LineResult, ...]:
        return tuple(line for line in self.lines if line.line_class in FINDINGS)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": len(self.lines),
            "totals": self.totals,
            "timezones": dict(self.timezones),
            "family": self.family,
            "caste": self.caste,
            "unclassified": list(self.unclassified),
            "unused_mapping_rules": list(self.unused_rules),
            "env_file": {"path": self.env_file, "variables": sorted(self.env)},
            "declarations": list(self.declarations),
            "results": [line.as_dict() for line in self.lines],
        }
