"""The store's connection as a prefect-sqlalchemy block.

`automates sync` saves it from the settings; flows load it by name, so the worker's flow runs,
the CLI and the Prefect UI (Blocks page) all see one configuration. The password, if any, is a
secret field and never shown in the UI; but the API returns it to any caller that asks with
include_secrets=true, so whoever reaches the API reads it
(docs/decisions/0030-who-reads-the-store-secret.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url

from automates.errors import ServerError
from automates.settings import Settings
from automates.store.engine import make_engine

if TYPE_CHECKING:
    from prefect_sqlalchemy import SqlAlchemyConnector

STORE_DRIVER = "postgresql+psycopg"
BLOCK_TYPE = "sqlalchemy-connector"


def connector_for(url: str) -> SqlAlchemyConnector:
    from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector

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
    from prefect_sqlalchemy import ConnectionComponents

    info = connector.connection_info
    assert isinstance(info, ConnectionComponents)
    return info.create_url().render_as_string(hide_password=False)


async def save_store_block(name: str, url: str) -> bool:
    """Save the block unless it already holds this URL; return whether it was written.

    A refusal is reported by status and path only: Prefect's error text quotes the response,
    and a 422 response quotes the request body, which holds the password.
    """
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect_sqlalchemy import SqlAlchemyConnector

    from automates.server.client import refused_request

    wanted = connector_for(url)
    try:
        try:
            current = await SqlAlchemyConnector.aload(name)
        except ValueError:  # no such block yet
            current = None
        if current is not None and _rendered(current) == _rendered(wanted):
            return False
        await wanted.asave(name, overwrite=True)
    except PrefectHTTPStatusError as error:
        raise ServerError(
            f"the Prefect API refused the store block {name!r}: {refused_request(error)} "
            f"answered {error.response.status_code}"
        ) from None
    return True


def store_engine(settings: Settings | None = None) -> Engine:
    """The store's engine inside a flow run, from the block the server holds."""
    return store_engine_from_block((settings or Settings()).store_block)


def store_engine_from_block(name: str) -> Engine:
    """The store's engine from the block document, read with Prefect's client.

    Every guarded run calls this from its own fresh process; reading the document's fields
    directly spares it importing prefect-sqlalchemy (about 0.2 s, docs/benchmarks.md).
    """
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name(name, block_type_slug=BLOCK_TYPE)
    return make_engine(_url(document.data["connection_info"]).render_as_string(False))


def _url(info: dict[str, Any]) -> URL:
    def secret(value: Any) -> Any:
        return value.get_secret_value() if hasattr(value, "get_secret_value") else value

    return URL.create(
        drivername=info["driver"],
        username=info.get("username"),
        password=secret(info.get("password")),
        host=info.get("host"),
        port=info.get("port"),
        database=info.get("database"),
        query=info.get("query") or {},
    )
