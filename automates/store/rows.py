"""Typed rows: what the store's reads return, one frozen dataclass per table (or per query
that joins columns of another table to it), built from a SQLAlchemy row in one way.

A row class lists its columns as fields, named as the columns are; a state or status column
is typed as its enumeration (automates/states.py) and read as one, so callers compare
members, not strings. `as_dict` gives the columns back as the store returned them: what the
CLI's `--json` prints, unchanged by the typing (an enumeration prints as its value).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import Field, fields
from enum import Enum
from types import UnionType
from typing import Any, ClassVar, Self, get_args, get_type_hints

from sqlalchemy import Row

Reader = Callable[[Any], Any]

_READERS: dict[type, tuple[tuple[str, Reader], ...]] = {}


class StoredRow:
    """The base of a row class, itself a frozen dataclass."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @classmethod
    def from_row(cls, row: Row[Any]) -> Self:
        """The row's columns named as the fields; other columns of the query are ignored."""
        mapping = row._mapping
        return cls(**{name: read(mapping[name]) for name, read in _readers(cls)})

    def as_dict(self) -> dict[str, Any]:
        """Column → value, in the order of the fields."""
        return column_values(self)


def column_values(row: Any) -> dict[str, Any]:
    """A row dataclass's fields as column → value: what a read row prints and what a new row
    (an execution, an alert) is inserted with. Not dataclasses.asdict: it deep-copies, and a
    JSONB column may hold anything."""
    return {column.name: getattr(row, column.name) for column in fields(row)}


def _readers(cls: type[StoredRow]) -> tuple[tuple[str, Reader], ...]:
    """Each field's name, and how its column's value is read (worked out once per class)."""
    found = _READERS.get(cls)
    if found is None:
        hints = get_type_hints(cls)
        found = _READERS[cls] = tuple(
            (column.name, _reader(hints[column.name])) for column in fields(cls)
        )
    return found


def _reader(hint: Any) -> Reader:
    """A field typed as an enumeration (or as one or None) reads its member from the stored
    value; any other field reads the value as stored."""
    members = get_args(hint) if isinstance(hint, UnionType) else (hint,)
    enums = [arg for arg in members if isinstance(arg, type) and issubclass(arg, Enum)]
    if not enums:
        return _as_stored
    [enum] = enums
    return lambda value: None if value is None else enum(value)


def _as_stored(value: Any) -> Any:
    return value
