"""One database URL, spelled for each driver that uses it.

Operators set one plain `postgresql://` URL; the store speaks psycopg 3 and the Prefect
server asyncpg, so the driver part is rewritten here and nowhere else.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url


def store_url(url: str) -> URL:
    """The URL for SQLAlchemy with psycopg 3."""
    return make_url(url).set(drivername="postgresql+psycopg")


def prefect_server_url(url: str) -> str:
    """The URL for the Prefect server's own database connection (asyncpg)."""
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
