"""Workarounds for measured problems of the pinned Prefect (3.8.8), each with its reason.

Timezone listing: every validation of a schedule's timezone calls
`prefect.types._datetime.get_timezones()`, which lists every IANA zone from disk
(`zoneinfo.available_timezones()`, 3-8 ms a call). Reading 200 deployments back costs the server
about 1.3 s of CPU and creating one about 50 ms, nearly all of it this listing
(docs/benchmarks.md, docs/decisions/0005-memoized-timezone-listing.md). The set of zones does not
change while a process runs, so it is listed once per process. tests/unit/test_prefect_patches.py
fails if Prefect moves either name, so an upgrade cannot silently drop the workaround.
"""

from __future__ import annotations

import functools


def memoize_timezone_listing() -> None:
    """List IANA timezones once per process instead of once per validated schedule."""
    from prefect._internal.schemas import validators
    from prefect.types import _datetime

    listing = _datetime.get_timezones
    if getattr(listing, "cache_info", None) is not None:
        return  # already applied in this process
    cached = functools.cache(listing)
    _datetime.get_timezones = cached
    validators.get_timezones = cached


def apply_all() -> None:
    memoize_timezone_listing()
