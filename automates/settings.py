"""The one settings root of the project.

Every setting is an `AUTOMATES_*` environment variable (or a line of an env file, see
`automates.envfiles`). Paths default to folders of the checkout so that a fresh clone runs
with no configuration at all; the two URLs switch from the embedded defaults to external
services.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]

Port = Annotated[int, Field(ge=1, le=65535)]


class Settings(BaseSettings):
    """Configuration of the automates layer; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="AUTOMATES_", frozen=True, extra="ignore")

    project_root: Path = Field(
        default=PROJECT_ROOT,
        description="The checkout holding flows/ and deployments/; flow runs start here.",
    )
    data_dir: Path | None = Field(
        default=None,
        description="Where the embedded PostgreSQL, server logs and pid files live "
        "(default: <project_root>/.data).",
    )
    registry_file: Path | None = Field(
        default=None,
        description="The declarations file (default: <project_root>/deployments/registry.yaml).",
    )
    database_url: str | None = Field(
        default=None,
        description="An external PostgreSQL (postgresql://user:pass@host:port/db). Unset: the "
        "embedded PostgreSQL in the data folder. The Prefect server and the store share it.",
    )
    prefect_api_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AUTOMATES_PREFECT_API_URL", "PREFECT_API_URL"),
        description="An external Prefect API (http://host:4200/api). Unset: the local server "
        "started by `automates up` on server_host:server_port. PREFECT_API_URL also sets it.",
    )
    server_host: str = Field(default="127.0.0.1", description="Where `up` binds the server.")
    server_port: Port = Field(default=4200, description="Where `up` binds the server.")
    work_pool: str = Field(
        default="local", description="The process work pool served by the local worker."
    )
    store_block: str = Field(
        default="automates-store",
        description="Name of the prefect-sqlalchemy block that flows use to reach the store.",
    )

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgresql+", "postgres://")):
            raise ValueError("AUTOMATES_DATABASE_URL must be a postgresql:// URL")
        return value

    @cached_property
    def data_path(self) -> Path:
        return (self.data_dir or self.project_root / ".data").resolve()

    @cached_property
    def registry_path(self) -> Path:
        return (self.registry_file or self.project_root / "deployments" / "registry.yaml").resolve()

    @property
    def embedded(self) -> bool:
        """True when the database is the embedded PostgreSQL of the data folder."""
        return self.database_url is None

    @property
    def api_url(self) -> str:
        return self.prefect_api_url or f"http://{self.server_host}:{self.server_port}/api"

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")


def env_file_paths(project_root: Path = PROJECT_ROOT) -> list[Path]:
    """The env files read at start-up, most specific first: the working folder, then the checkout."""
    here = Path.cwd() / ".env"
    ours = project_root / ".env"
    return [here] if here == ours else [here, ours]
