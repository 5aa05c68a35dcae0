"""Which PostgreSQL the layer uses: the operator's URL, or the embedded one."""

from __future__ import annotations

from automates.errors import PlatformError
from automates.settings import Settings
from automates.store import embedded_pg


def database_url(settings: Settings) -> str:
    """The plain postgresql:// URL of the database shared by the server and the store."""
    if settings.database_url is not None:
        return settings.database_url
    url = embedded_pg.running_url(settings.data_path)
    if url is None:
        raise PlatformError(
            f"the embedded PostgreSQL in {embedded_pg.pgdata(settings.data_path)} is not running: "
            "start the layer with `automates up`, or set AUTOMATES_DATABASE_URL"
        )
    return url
