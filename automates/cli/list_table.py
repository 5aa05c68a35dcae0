"""How `automates list` reads in a terminal, at any width: whole words, its columns chosen by
priority (the name first) to fit the console's width, the ones left out named under the table.
The `--json` output is not made here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from automates.cli.output import TIME
from automates.overview import AutomateStatus

# A rich Table's default box: one rule left of each column and one at the right edge, and one
# space of padding each side of every cell.
TABLE_EDGE = 1
COLUMN_EXTRA = 3


@dataclass
class _Column:
    header: str
    cells: list[Text]
    wrap: bool  # may wrap between words; otherwise kept on one line

    @property
    def natural(self) -> int:
        """The width that shows every cell on its own lines, unwrapped."""
        lines = [self.header, *(line for cell in self.cells for line in cell.plain.split("\n"))]
        return max(cell_len(line) for line in lines)

    @property
    def least(self) -> int:
        """The narrowest width that cuts no word."""
        if not self.wrap:
            return self.natural
        words = [self.header, *(word for cell in self.cells for word in cell.plain.split())]
        return max(cell_len(word) for word in words)


# Display order; `_PRIORITY` says which columns stay when the width runs out.
_ORDER = ("name", "kind", "caste", "family", "schedules", "next run", "last run", "runs")
_PRIORITY = ("name", "next run", "last run", "schedules", "runs", "kind", "family", "caste")


def registry_table(statuses: Sequence[AutomateStatus], width: int) -> tuple[Table, list[str]]:
    """The rows of `automates list` as a table no wider than `width`, and the columns left out
    to fit it (the name is never left out, nor cut)."""
    columns = {
        "name": _Column("name", [Text(s.automate.name) for s in statuses], wrap=False),
        "kind": _Column("kind", [Text(s.automate.kind.value) for s in statuses], wrap=False),
        "caste": _Column("caste", [Text(s.automate.caste) for s in statuses], wrap=False),
        "family": _Column("family", [Text(s.automate.family) for s in statuses], wrap=False),
        "schedules": _Column("schedules", [_schedules_cell(s) for s in statuses], wrap=True),
        "next run": _Column("next run", [_next_run_cell(s) for s in statuses], wrap=False),
        "last run": _Column(
            "last run", [Text(s.last_run_state or "-") for s in statuses], wrap=False
        ),
        "runs": _Column(
            "runs",
            [Text(f"{s.runs} ({s.failed_runs} failed)" if s.runs else "0") for s in statuses],
            wrap=False,
        ),
    }
    room = width - TABLE_EDGE
    kept: list[str] = []
    for name in _PRIORITY:
        need = columns[name].least + COLUMN_EXTRA
        if name == "name" or need <= room:
            kept.append(name)
            room -= need
    widths = {name: columns[name].least for name in kept}
    for name in _PRIORITY:  # what is left widens the wrapping columns, in priority order
        if name in kept and room > 0:
            grow = min(room, columns[name].natural - widths[name])
            widths[name] += grow
            room -= grow
    shown = [name for name in _ORDER if name in kept]
    table = Table()
    for name in shown:
        column = columns[name]
        # fold: a name longer than the whole terminal is broken, never cut with an ellipsis
        table.add_column(
            column.header, width=widths[name], no_wrap=not column.wrap, overflow="fold"
        )
    for row in range(len(statuses)):
        table.add_row(*(columns[name].cells[row] for name in shown))
    return table, [name for name in _ORDER if name not in kept]


def _paused(status: AutomateStatus) -> bool:
    return bool(status.automate.schedules and status.deployment and not status.active_schedules)


def _schedules_cell(status: AutomateStatus) -> Text:
    if not status.automate.schedules:
        return Text("-")
    text = Text("\n".join(f"{s.form.expression} {s.timezone}" for s in status.automate.schedules))
    if _paused(status):
        text.append(" (paused)", style="red")
    return text


def _next_run_cell(status: AutomateStatus) -> Text:
    """The next run the server holds; "paused" (kept at any width, unlike the schedules
    column) when its schedules are paused and no run is left."""
    if status.next_runs:
        return Text(status.next_runs[0].strftime(TIME))
    return Text("paused", style="red") if _paused(status) else Text("-")


def hidden_note(hidden: list[str]) -> str | None:
    if not hidden:
        return None
    return f"hidden: {', '.join(hidden)} (--json shows all)"
