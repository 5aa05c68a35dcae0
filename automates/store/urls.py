"""One database URL, spelled for each driver that uses it, and never shown with its password.

Operators set one plain `postgresql://` URL; the store speaks psycopg 3 and the Prefect
server asyncpg, so the driver part is rewritten here and nowhere else.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# scheme://user:password@ — the password runs to the last @ before a space or a quote, so a
# password holding an @ is masked whole (masking a little more is the safe mistake).
_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s'\"]*):[^\s'\"]*@")


def store_url(url: str) -> URL:
    """The URL for SQLAlchemy with psycopg 3."""
    return make_url(url).set(drivername="postgresql+psycopg")


def prefect_server_url(url: str) -> str:
    """The URL for the Prefect server's own database connection (asyncpg)."""
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def redacted(url: str) -> str:
    """The URL with its password as `***`, even when SQLAlchemy cannot parse it."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return mask_passwords(url)


def mask_passwords(text: str) -> str:
    """`text` with the password of every URL in it as `***` (`scheme://user:***@host`)."""
    return _USERINFO.sub(r"\g<head>:***@", text)
