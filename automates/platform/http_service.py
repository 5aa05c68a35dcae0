"""Serving one of our small HTTP services (the gate, the webhook) with uvicorn."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn


def serve(app: Any, name: str, host: str, port: int) -> None:
    """Run `app` until stopped; each log line carries the service's `name`. The app logs one
    line per request itself, so uvicorn's access log and httpx's line per upstream call are
    left out."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
