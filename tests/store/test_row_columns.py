"""Rows the CLI prints with `--json` keep their table's columns, in the table's order: the
keys of the output, which scripts read, stay what the untyped reads printed."""

from __future__ import annotations

from dataclasses import fields

from automates.store.breakers import StoredBreaker
from automates.store.journals import JournaledCrash, JournaledExecution
from automates.store.registry import StoredAutomate
from automates.store.schema import automates, breakers, crash_journal, execution_journal


def test_journal_and_breaker_rows_name_their_tables_columns_in_order() -> None:
    for row, table in (
        (JournaledExecution, execution_journal),
        (JournaledCrash, crash_journal),
        (StoredBreaker, breakers),
    ):
        assert [field.name for field in fields(row)] == list(table.columns.keys())


def test_a_stored_automate_is_its_row_with_its_agents() -> None:
    assert [field.name for field in fields(StoredAutomate)] == [*automates.columns.keys(), "agents"]
