"""The highly available profile: the Prefect API as several processes and its background
services as their own, sharing state through Redis and an external PostgreSQL.

Prefect 3.8.8 runs `prefect server start --workers N` (N > 1) only with PostgreSQL and Redis
messaging, event ordering and lease storage (prefect-redis), and then without its services,
which run as `prefect server services start`. Its own check misses the Docket URL (the
scheduler's and automations' queue, in memory by default: several services processes would
each run every scheduled action), the migrations and the block registration (every API process
runs them as it starts, and two inserting one block type at once stop the API).
This module sets all of it from two settings, AUTOMATES_REDIS_URL and AUTOMATES_API_WORKERS,
and refuses a half-configured layer, naming every setting missing or in conflict.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from automates.errors import PlatformError
from automates.settings import Settings
from automates.store.urls import redacted

# What the profile sets for the API and services processes (besides Redis's URL).
REDIS_BACKENDS = {
    "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
    "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
    "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
}
REDIS_URL_SETTING = "PREFECT_REDIS_MESSAGING_URL"
DOCKET_URL_SETTING = "PREFECT_SERVER_DOCKET_URL"
MIGRATE_SETTING = "PREFECT_SERVER_DATABASE_MIGRATE_ON_START"
BLOCKS_SETTING = "PREFECT_SERVER_REGISTER_BLOCKS_ON_START"


def enabled(settings: Settings) -> bool:
    return settings.redis_url is not None or settings.api_workers > 1


def problems(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Every reason the settings are not a whole profile: the single-process default, or the
    highly available one. Empty when `up` may start."""
    found = []
    if not enabled(settings):
        for name in (*REDIS_BACKENDS, REDIS_URL_SETTING, DOCKET_URL_SETTING):
            if environ.get(name) and "redis" in environ[name]:
                found.append(
                    f"{name} is set but AUTOMATES_REDIS_URL is not: set AUTOMATES_REDIS_URL "
                    f"for the highly available profile, or unset {name}"
                )
        return found
    if settings.redis_url is None:
        found.append(
            f"AUTOMATES_API_WORKERS={settings.api_workers} needs AUTOMATES_REDIS_URL "
            "(redis://host:6379/0): several API processes share events and leases through Redis"
        )
    else:
        scheme = urlsplit(settings.redis_url.get_secret_value()).scheme
        if scheme not in ("redis", "rediss"):
            found.append(
                f"AUTOMATES_REDIS_URL must start with redis:// or rediss:// (not {scheme!r}; "
                "Redis Cluster is not supported by Prefect)"
            )
    if settings.embedded:
        found.append(
            "the highly available profile needs an external PostgreSQL that every API process "
            "shares: set AUTOMATES_DATABASE_URL (the embedded one serves one machine)"
        )
    if settings.external_api:
        found.append(
            f"AUTOMATES_PREFECT_API_URL/PREFECT_API_URL points at another API "
            f"({settings.api_url}): the highly available profile runs its own; unset it, or "
            "unset AUTOMATES_REDIS_URL and AUTOMATES_API_WORKERS"
        )
    wanted = {**REDIS_BACKENDS, MIGRATE_SETTING: "false", BLOCKS_SETTING: "false"}
    for name, value in wanted.items():
        given = environ.get(name)
        if given is not None and given != value:
            found.append(f"{name}={given} conflicts with the highly available profile: unset it")
    for name in (REDIS_URL_SETTING, DOCKET_URL_SETTING):
        if environ.get(name):
            found.append(f"{name} is set: the profile sets it from AUTOMATES_REDIS_URL; unset it")
    return found


def check(settings: Settings, environ: Mapping[str, str]) -> None:
    found = problems(settings, environ)
    if found:
        raise PlatformError(
            "the layer's settings are half a profile: " + "; ".join(found) + ". Nothing was started"
        )


def server_environment(settings: Settings) -> dict[str, str]:
    """What the API and services processes get on top of the server's environment."""
    if not enabled(settings) or settings.redis_url is None:
        return {}
    url = settings.redis_url.get_secret_value()
    return {
        **REDIS_BACKENDS,
        REDIS_URL_SETTING: url,
        # The services' queue: in memory, a second services process would repeat its work.
        DOCKET_URL_SETTING: url,
        # `up` migrates and registers the block types once, before any API process starts
        # (server_setup.py): API processes starting together race on both.
        MIGRATE_SETTING: "false",
        BLOCKS_SETTING: "false",
    }


def check_redis(settings: Settings, timeout: float = 5.0) -> None:
    """Refuse to start when Redis does not answer a PING (named, its password hidden)."""
    if settings.redis_url is None:
        return
    import redis

    url = settings.redis_url.get_secret_value()
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        with client:
            client.ping()
    except (redis.RedisError, OSError, ValueError) as error:
        raise PlatformError(
            f"Redis at {redacted(url)} (AUTOMATES_REDIS_URL) does not answer: "
            f"{type(error).__name__}. Nothing was started"
        ) from error
