"""Publishing results where operators look: Prefect artifacts on the run's page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


@task
def publish_markdown(key: str, markdown: str, description: str) -> None:
    """One artifact per key: the latest version shows in the UI's Artifacts page."""
    create_markdown_artifact(key=key, markdown=markdown, description=description)
