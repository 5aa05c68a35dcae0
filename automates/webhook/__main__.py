"""`python -m automates.webhook`: serve the webhook (settings webhook_*; docs/scheduling.md)."""

from __future__ import annotations

import logging

import uvicorn

from automates.envfiles import load_env_files
from automates.settings import Settings, env_file_paths
from automates.webhook.app import WebhookConfig, create_app
from automates.webhook.token import webhook_token


def main() -> None:
    load_env_files(env_file_paths())
    settings = Settings()
    config = WebhookConfig(
        api_url=settings.api_url,
        token=webhook_token(settings),
        registry_path=settings.registry_path,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s webhook %(message)s")
    # httpx would log every Prefect API call; the webhook's own line per request is enough.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    uvicorn.run(
        create_app(config),
        host=settings.webhook_host,
        port=settings.webhook_port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
