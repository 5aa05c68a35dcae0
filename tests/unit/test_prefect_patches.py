"""The Prefect workarounds still find what they patch, and change no behaviour but speed."""

from __future__ import annotations

import asyncio
import zoneinfo

import pytest
from asyncpg.exceptions import CannotConnectNowError
from prefect._internal.schemas import validators
from prefect.client.schemas.schedules import CronSchedule
from prefect.types import _datetime
from prefect.utilities.schema_tools import ValidationError, validate
from prefect.utilities.schema_tools import validation as schema_validation
from prefect.workers.process import ProcessWorker

from automates.server.prefect_patches import (
    memoize_schema_checks,
    memoize_timezone_listing,
    retry_database_outages,
)


def test_the_timezone_listing_is_memoized_where_prefect_validates() -> None:
    # If an upgrade of Prefect moves these names, this fails and the workaround is re-examined.
    assert callable(_datetime.get_timezones) and callable(validators.get_timezones)
    memoize_timezone_listing()
    memoize_timezone_listing()  # idempotent
    assert validators.get_timezones is _datetime.get_timezones
    assert validators.get_timezones.cache_info() is not None  # type: ignore[attr-defined]
    assert set(validators.get_timezones()) == zoneinfo.available_timezones()


def test_schedules_are_validated_as_before() -> None:
    memoize_timezone_listing()
    assert CronSchedule(cron="0 3 * * *", timezone="Asia/Makassar").timezone == "Asia/Makassar"
    with pytest.raises(ValueError, match="Invalid timezone"):
        CronSchedule(cron="0 3 * * *", timezone="Mars/Olympus")


def test_schema_checks_are_memoized_where_prefect_validates_job_variables() -> None:
    memoize_schema_checks()
    memoize_schema_checks()  # idempotent
    check = schema_validation._VALIDATOR.check_schema
    assert getattr(check, "automates_memoized", False)
    variables = ProcessWorker.get_default_base_job_template()["variables"]
    # Job variables are still validated against the (memoized) schema on every call.
    good = {"command": "python -m automates.guard.engine", "env": {"AUTOMATES_GUARD": "{}"}}
    for _ in range(2):
        assert validate(good, variables, raise_on_error=True, ignore_required=True) == []
        with pytest.raises(ValidationError, match="stream_output"):
            validate({"stream_output": "loud"}, variables, raise_on_error=True)


def test_an_invalid_schema_is_still_refused_every_time() -> None:
    memoize_schema_checks()
    broken = {"type": "object", "properties": {"x": {"type": "no-such-type"}}}
    for _ in range(2):
        with pytest.raises(ValueError, match="Invalid schema"):
            schema_validation.is_valid_schema(broken, preprocess=False)


def _raised(error: BaseException, wrapper: type[Exception]) -> Exception:
    """`error` as the server meets it: raised again by the layers above it."""
    try:
        try:
            raise error
        except BaseException as inner:
            raise wrapper("request failed") from inner
    except Exception as outer:
        return outer


def test_a_request_failed_by_an_unreachable_database_is_answered_503() -> None:
    from prefect.server.api import server
    from starlette.requests import Request

    retry_database_outages()
    retry_database_outages()  # idempotent
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})

    def status(exc: Exception) -> int:
        return asyncio.run(server.custom_internal_exception_handler(request, exc)).status_code

    assert status(_raised(ConnectionRefusedError(111, "refused"), RuntimeError)) == 503
    assert status(ConnectionResetError(104, "reset")) == 503
    assert status(CannotConnectNowError("the database system is starting up")) == 503
    assert status(_raised(ValueError("a bug"), RuntimeError)) == 500  # not an outage
    assert status(KeyError("x")) == 500
