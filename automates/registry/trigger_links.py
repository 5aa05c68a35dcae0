"""The `after` links between declarations: each must name another declared automate that runs,
and the links must not loop (each completion would start the next, forever)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from automates.errors import DeclarationProblem
from automates.registry.model import Automate


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
