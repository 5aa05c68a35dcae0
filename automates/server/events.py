"""Events a command sends to the Prefect server, outside any flow run.

A flow run emits through Prefect's background events worker, which is drained when the run
ends. A command of the CLI is not a run: it opens an events client on the layer's API
address for the one event and closes it, so the event has left before the command returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any


def announce_automate(
    api_url: str, event: str, automate: str, payload: Mapping[str, Any]
) -> str | None:
    """Send `event` about `automate` (resource `automates.automate.NAME`, as the guard's
    events); None when sent, otherwise why not (best effort: the store keeps the record)."""
    resource = {
        "prefect.resource.id": f"automates.automate.{automate}",
        "prefect.resource.name": automate,
    }
    try:
        asyncio.run(_send(api_url, event, resource, dict(payload)))
    except Exception as error:  # the server is down or refuses the socket
        return f"{type(error).__name__}: {error}"
    return None


async def _send(
    api_url: str, event: str, resource: dict[str, str], payload: dict[str, Any]
) -> None:
    from prefect.events import Event, Resource
    from prefect.events.clients import PrefectEventsClient

    async with PrefectEventsClient(api_url=api_url) as client:
        await client.emit(
            Event(event=event, resource=Resource.model_validate(resource), payload=payload)
        )
