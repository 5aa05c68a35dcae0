"""Runs: scoped executions over a perimeter (the platform itself, or one tenant)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from automates.errors import invalid_request
from automates.states import PerimeterKind, RunTrigger
from automates.store import taskruns as sql
from automates.store.schema import SLUG_PATTERN

CONTEXT_FIELDS = ("machine", "client", "contact", "mailbox")


class RunRequest(BaseModel):
    """Where a run works, why it was started and what it is called."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    perimeter: str = Field(pattern=SLUG_PATTERN, max_length=80)
    title: str = Field(min_length=1, max_length=300)
    trigger: RunTrigger = RunTrigger.MANUAL
    source: str = Field(default="console", min_length=1, max_length=80)

    @classmethod
    def parse(cls, values: dict[str, Any]) -> RunRequest:
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise invalid_request("run request", error) from None

    def row(self) -> dict[str, Any]:
        return self.model_dump()


class Perimeter(BaseModel):
    """A perimeter and the context a run over it loads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=SLUG_PATTERN, max_length=80)
    title: str = Field(min_length=1, max_length=200)
    workdir: Path
    machine: str | None = Field(default=None, max_length=200)
    client: str | None = Field(default=None, max_length=200)
    contact: str | None = Field(default=None, max_length=200)
    mailbox: str | None = Field(default=None, max_length=200)

    @field_validator("workdir")
    @classmethod
    def _absolute_folder(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("must be an absolute path")
        if not value.is_dir():
            raise ValueError(f"{value} is not an existing folder")
        return value

    @property
    def kind(self) -> PerimeterKind:
        return PerimeterKind.PLATFORM if self.id == "platform" else PerimeterKind.TENANT

    def row(self) -> dict[str, Any]:
        return {**self.model_dump(), "workdir": str(self.workdir), "kind": self.kind}


def context_lines(perimeter: sql.Perimeter) -> list[str]:
    """The perimeter's context as the lines appended to a delegated prompt."""
    lines = [f"Perimeter: {perimeter.id} ({perimeter.kind}): {perimeter.title}"]
    lines += [
        f"{field.capitalize()}: {getattr(perimeter, field)}"
        for field in CONTEXT_FIELDS
        if getattr(perimeter, field)
    ]
    return lines
