"""The highly available profile's settings: whole, or refused naming every missing or
conflicting setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from automates.errors import PlatformError
from automates.platform import ha
from automates.settings import Settings

DB = "postgresql://postgres@db.internal:5432/automates"
REDIS = "redis://:s3cret@redis.internal:6379/0"


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(project_root=tmp_path, **values)  # type: ignore[arg-type]


def test_the_default_is_a_whole_profile_and_sets_nothing(tmp_path: Path) -> None:
    plain = settings(tmp_path)
    assert not ha.enabled(plain)
    assert ha.problems(plain, {}) == []
    assert ha.server_environment(plain) == {}


def test_a_whole_ha_profile_sets_redis_for_every_backend_and_turns_start_up_work_off(
    tmp_path: Path,
) -> None:
    whole = settings(tmp_path, database_url=DB, redis_url=REDIS, api_workers=3)
    assert ha.enabled(whole) and ha.problems(whole, {}) == []
    env = ha.server_environment(whole)
    assert env["PREFECT_MESSAGING_BROKER"] == env["PREFECT_MESSAGING_CACHE"]
    assert env["PREFECT_MESSAGING_BROKER"] == "prefect_redis.messaging"
    assert env["PREFECT_SERVER_EVENTS_CAUSAL_ORDERING"] == "prefect_redis.ordering"
    assert env["PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"] == "prefect_redis.lease_storage"
    assert env["PREFECT_REDIS_MESSAGING_URL"] == env["PREFECT_SERVER_DOCKET_URL"] == REDIS
    assert env["PREFECT_SERVER_DATABASE_MIGRATE_ON_START"] == "false"
    assert env["PREFECT_SERVER_REGISTER_BLOCKS_ON_START"] == "false"


def test_every_missing_or_conflicting_setting_is_named_at_once(tmp_path: Path) -> None:
    half = settings(tmp_path, api_workers=2)  # no Redis, embedded database
    environ = {"PREFECT_MESSAGING_BROKER": "prefect.server.utilities.messaging.memory"}
    found = ha.problems(half, environ)
    assert len(found) == 3, found
    assert any("AUTOMATES_API_WORKERS=2 needs AUTOMATES_REDIS_URL" in p for p in found)
    assert any("set AUTOMATES_DATABASE_URL" in p for p in found)
    assert any(p.startswith("PREFECT_MESSAGING_BROKER=prefect.server") for p in found)
    with pytest.raises(PlatformError, match="Nothing was started"):
        ha.check(half, environ)


def test_redis_backends_without_the_profile_are_half_a_profile(tmp_path: Path) -> None:
    environ = {"PREFECT_MESSAGING_BROKER": "prefect_redis.messaging"}
    [problem] = ha.problems(settings(tmp_path), environ)
    assert "AUTOMATES_REDIS_URL is not" in problem


@pytest.mark.parametrize(
    ("redis_url", "fragment"),
    [("http://redis:6379", "'http'"), ("redis+cluster://r:6379", "Cluster is not supported")],
)
def test_a_url_prefect_cannot_use_is_refused(tmp_path: Path, redis_url: str, fragment: str) -> None:
    found = ha.problems(settings(tmp_path, database_url=DB, redis_url=redis_url), {})
    assert any(fragment in p for p in found), found


def test_an_external_api_and_the_profile_exclude_each_other(tmp_path: Path) -> None:
    both = settings(
        tmp_path, database_url=DB, redis_url=REDIS, prefect_api_url="http://api.internal/api"
    )
    assert any("points at another API" in p for p in ha.problems(both, {}))


def test_redis_s_password_never_appears_in_a_refusal(tmp_path: Path) -> None:
    down = settings(tmp_path, database_url=DB, redis_url="redis://:s3cret@127.0.0.1:1/0")
    with pytest.raises(PlatformError) as refused:
        ha.check_redis(down, timeout=1)
    assert "s3cret" not in str(refused.value) and "does not answer" in str(refused.value)
