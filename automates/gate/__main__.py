"""`python -m automates.gate`: serve the gate (AUTOMATES_GATE_*; docs/browser.md#the-gate)."""

from __future__ import annotations

from automates.browser.payload_secrets import payload_keys
from automates.envfiles import load_env_files
from automates.errors import SettingsError
from automates.gate.app import GateConfig, create_app
from automates.platform.http_limits import BodyLimits
from automates.platform.http_service import serve
from automates.settings import Settings, env_file_paths
from automates.store.database import database_url


def main() -> None:
    load_env_files(env_file_paths())
    settings = Settings()
    if settings.gate.worker_token is None or len(settings.gate.worker_token) < 16:
        raise SettingsError("AUTOMATES_GATE_WORKER_TOKEN must be set (16 characters or more)")
    config = GateConfig(
        upstream_api_url=(settings.gate.upstream_url or settings.api_url).rstrip("/"),
        worker_token=settings.gate.worker_token.get_secret_value(),
        pool=settings.browser.pool,
        database_url=database_url(settings),
        body=BodyLimits(settings.gate.max_body_bytes, settings.http_read_timeout_seconds),
        rate_limit=settings.gate.rate_limit,
        payload_keys=payload_keys(settings),
    )
    serve(create_app(config), "gate", settings.gate, settings.http_read_timeout_seconds)


if __name__ == "__main__":
    main()
