"""Where a byte stands in a text file an operator wrote: its line and column, for errors that
point at it (a registry or a crontab that is not UTF-8)."""

from __future__ import annotations


def line_and_column(data: bytes, index: int) -> tuple[int, int]:
    """The 1-based line and column of `data[index]`, columns counted in characters."""
    line_start = data.rfind(b"\n", 0, index) + 1
    line = data.count(b"\n", 0, index) + 1
    column = len(data[line_start:index].decode("utf-8", errors="replace")) + 1
    return line, column
