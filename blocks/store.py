"""The store's connection as a prefect-sqlalchemy block.

`automates sync` saves it from the settings; flows load it by name, so the worker's flow runs,
the CLI and the Prefect UI (Blocks page) all see one configuration. The password, if any, is a
secret field and never shown in the UI.
"""

from __future__ import annotations

from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from automates.settings import Settings
from automates.store.engine import make_engine

STORE_DRIVER = "postgresql+psycopg"


def connector_for(url: str) -> SqlAlchemyConnector:
    parsed = make_url(url)
    components = ConnectionComponents(
        driver=STORE_DRIVER,
        database=parsed.database,
        username=parsed.username,
        password=parsed.password,
        host=parsed.host,
        port=parsed.port,
        query={k: str(v) for k, v in parsed.query.items()} or None,
    )
    return SqlAlchemyConnector(connection_info=components)


def _rendered(connector: SqlAlchemyConnector) -> str:
    info = connector.connection_info
    assert isinstance(info, ConnectionComponents)
    return info.create_url().render_as_string(hide_password=False)


async def save_store_block(name: str, url: str) -> bool:
    """Save the block unless it already holds this URL; return whether it was written."""
    wanted = connector_for(url)
    try:
        current = await SqlAlchemyConnector.aload(name)
    except ValueError:  # no such block yet
        current = None
    if current is not None and _rendered(current) == _rendered(wanted):
        return False
    await wanted.asave(name, overwrite=True)
    return True


def store_engine(settings: Settings | None = None) -> Engine:
    """The store's engine inside a flow run, from the block the server holds."""
    return store_engine_from_block((settings or Settings()).store_block)


def store_engine_from_block(name: str) -> Engine:
    # `_sync=True`: callable from state hooks that Prefect runs inside an event loop.
    connector = SqlAlchemyConnector.load(name, _sync=True)
    return make_engine(_rendered(connector))
