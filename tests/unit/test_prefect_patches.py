"""The Prefect workarounds still find what they patch, and change no behaviour but speed."""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import ssl
import zoneinfo
from pathlib import Path

import certifi
import pytest
from asyncpg.exceptions import CannotConnectNowError
from prefect._internal.schemas import validators
from prefect.client.schemas.schedules import CronSchedule
from prefect.settings import get_current_settings
from prefect.types import _datetime
from prefect.utilities.schema_tools import ValidationError, validate
from prefect.utilities.schema_tools import validation as schema_validation
from prefect.workers.process import ProcessWorker

from automates.server.prefect_patches import (
    TLS_MODULES,
    api_tls_context,
    memoize_schema_checks,
    memoize_timezone_listing,
    retry_database_outages,
    share_verified_tls_contexts,
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


def test_prefect_builds_each_verified_tls_context_once_per_ca_file(tmp_path: Path) -> None:
    share_verified_tls_contexts()
    share_verified_tls_contexts()  # idempotent
    from prefect.client.orchestration import PrefectClient
    from prefect.client.orchestration import ssl as client_ssl

    bundle = get_current_settings().api.ssl_cert_file or certifi.where()  # as Prefect's client
    first = client_ssl.create_default_context(cafile=bundle)
    for name in TLS_MODULES:  # where Prefect builds them; an upgrade that moves them fails here
        module_ssl = vars(importlib.import_module(name))["ssl"]
        assert module_ssl.create_default_context(cafile=bundle) is first
        assert module_ssl.CERT_NONE is ssl.CERT_NONE  # the rest of `ssl` as it was
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    # What a Prefect client of these settings uses is that very context, built ahead.
    assert api_tls_context() is first
    client = PrefectClient("http://127.0.0.1:9/api")
    assert client._client._transport._pool._ssl_context is first  # type: ignore[attr-defined]
    # A bundle replaced on disk is read again.
    copy = tmp_path / "bundle.pem"
    shutil.copyfile(bundle, copy)
    before = client_ssl.create_default_context(cafile=str(copy))
    os.utime(copy, ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns + 10**9))
    assert client_ssl.create_default_context(cafile=str(copy)) is not before
    # Unverified contexts are changed after they are built: one per call, as before.
    loose = client_ssl.create_default_context()
    assert loose is not client_ssl.create_default_context()
    loose.check_hostname = False
    loose.verify_mode = ssl.CERT_NONE
    assert client_ssl.create_default_context(cafile=bundle).verify_mode == ssl.CERT_REQUIRED
    # A missing file is still ssl's error to give.
    with pytest.raises(FileNotFoundError):
        client_ssl.create_default_context(cafile=str(tmp_path / "none.pem"))
