"""`python -m automates.webhook`: serve the webhook (AUTOMATES_WEBHOOK_*; docs/scheduling.md)."""

from __future__ import annotations

from automates.envfiles import load_env_files
from automates.platform.http_limits import BodyLimits
from automates.platform.http_service import serve
from automates.settings import Settings, env_file_paths
from automates.store.database import database_url
from automates.store.engine import make_engine
from automates.webhook.app import WebhookConfig, create_app
from automates.webhook.callers import import_legacy_token
from automates.webhook.token import setting_token


def main() -> None:
    load_env_files(env_file_paths())
    settings = Settings()
    store = database_url(settings)
    engine = make_engine(store)
    try:
        import_legacy_token(settings, engine)
    finally:
        engine.dispose()
    config = WebhookConfig(
        api_url=settings.api_url,
        registry_path=settings.registry_path,
        database_url=store,
        setting_token=setting_token(settings),
        body=BodyLimits(settings.webhook.max_body_bytes, settings.http_read_timeout_seconds),
        rate_limit=settings.webhook.rate_limit,
    )
    serve(create_app(config), "webhook", settings.webhook, settings.http_read_timeout_seconds)


if __name__ == "__main__":
    main()
