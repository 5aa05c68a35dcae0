"""Triggers beyond time: an automate that starts when a Prefect event happens.

`after: other-automate` starts a run when a run of that automate completes; `event:` names any
Prefect event (e.g. `automates.breaker.opened`), optionally narrowed by `match` on the event's
resource labels. Each trigger becomes one of the deployment's Prefect triggers
(automates/server/triggers.py), so Prefect's own automations service starts the runs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from automates.errors import DeclarationProblem
from automates.registry.fields import Parameters
from automates.registry.limits import MAX_LIST_ITEMS, MAX_STRING_CHARS

if TYPE_CHECKING:
    from automates.registry.model import Automate

FLOW_RUN_EVENTS = "prefect.flow-run."


class Trigger(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, str_max_length=MAX_STRING_CHARS
    )

    after: str | None = Field(default=None, description="Another automate: a run of it completed.")
    event: str | None = Field(default=None, description="A Prefect event name.")
    match: dict[str, str] = Field(
        default_factory=dict,
        max_length=MAX_LIST_ITEMS,
        description="Labels the event's resource must carry.",
    )
    parameters: Parameters = Field(
        default_factory=dict, description="Flow parameters of the runs this trigger starts."
    )

    @model_validator(mode="after")
    def _one_source(self) -> Trigger:
        if (self.after is None) == (self.event is None):
            raise ValueError("give exactly one of after or event")
        if self.after is not None and self.match:
            raise ValueError("[match] applies to event triggers only; after names the automate")
        if self.event is not None and not self.event:
            raise ValueError("[event] must name a Prefect event")
        if self.event is not None and self.event.startswith(FLOW_RUN_EVENTS) and not self.match:
            # Prefect refuses such an automation (every flow run would match, its own included).
            raise ValueError(
                f"[match] a {self.event!r} trigger needs match labels to say whose runs; "
                "for 'a run of automate X completed' write after: X"
            )
        return self

    @property
    def label(self) -> str:
        """How the trigger reads in the UI: `after X` or `on EVENT`."""
        return f"after {self.after}" if self.after is not None else f"on {self.event}"


def trigger_problems(
    automates: Sequence[Automate], declared: Collection[str] = ()
) -> list[DeclarationProblem]:
    """Problems between declarations: an `after` must name another declared automate that
    runs, and `after` links must not loop (each completion would start the next, forever).
    `declared` also names the declarations refused on their own (their problems are reported
    already; naming one is not a second problem)."""
    kinds = {a.name: a.kind for a in automates}
    names = set(declared) | kinds.keys()
    problems = []
    for automate in automates:
        for index, trigger in enumerate(automate.triggers):
            target = trigger.after
            if target is None:
                continue
            field = f"triggers[{index}].after"
            if target == automate.name:
                message = "an automate cannot start after itself (it would run forever)"
            elif target not in names:
                message = f"no automate named {target!r} is declared"
            elif target in kinds and not kinds[target].deployable:
                message = f"{target!r} is a lib: it never runs, so nothing can follow it"
            else:
                continue
            problems.append(DeclarationProblem(automate.name, field, message))
    problems.extend(_loops(automates, kinds.keys()))
    return problems


def _loops(automates: Sequence[Automate], declared: Iterable[str]) -> list[DeclarationProblem]:
    known = set(declared)
    follows = {
        a.name: sorted({t.after for t in a.triggers if t.after in known and t.after != a.name})
        for a in automates
    }
    problems = []
    reported: set[frozenset[str]] = set()
    for start in sorted(follows):
        path = _cycle_from(start, follows)
        if path is None or frozenset(path) in reported:
            continue
        reported.add(frozenset(path))
        loop = " runs after ".join([*path, path[0]])
        problems.append(
            DeclarationProblem(
                start, "triggers", f"after-triggers loop ({loop}): each run would start the next"
            )
        )
    return problems


def _cycle_from(start: str, follows: dict[str, list[str]]) -> list[str] | None:
    """A loop of after-links through `start`, as the automates in order, or None."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for target in follows.get(name, ()):
            if target == start:
                return path
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None
