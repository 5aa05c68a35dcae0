"""The Prefect workarounds still find what they patch, and change no behaviour but speed."""

from __future__ import annotations

import zoneinfo

import pytest
from prefect._internal.schemas import validators
from prefect.client.schemas.schedules import CronSchedule
from prefect.types import _datetime

from automates.platform.prefect_patches import memoize_timezone_listing


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
