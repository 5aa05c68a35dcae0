"""Workarounds for measured problems of the pinned Prefect (3.8.8), each with its reason.

Timezone listing: every validation of a schedule's timezone calls
`prefect.types._datetime.get_timezones()`, which lists every IANA zone from disk
(`zoneinfo.available_timezones()`, 3-8 ms a call). Reading 200 deployments back costs the server
about 1.3 s of CPU and creating one about 50 ms, nearly all of it this listing
(docs/benchmarks.md, docs/decisions/0005-memoized-timezone-listing.md). The set of zones does not
change while a process runs, so it is listed once per process.

Job-variable schema checks (server only): on every deployment created or updated with job
variables, the server checks the work pool's variables schema against the JSON Schema
meta-schema twice (`is_valid_schema`, then again inside `jsonschema.validate`), about 13 ms of
CPU per deployment for a schema that has not changed; the guard gives every deployment job
variables (decision 0006), so this doubled the cost of a cold sync. A schema that passed the
meta-schema check once passes it again, so each distinct schema is checked once per process; the
job variables themselves are still validated against it on every call.

tests/unit/test_prefect_patches.py fails if Prefect moves a patched name, so an upgrade cannot
silently drop a workaround.
"""

from __future__ import annotations

import functools
import json
from typing import Any

_CHECKED_SCHEMAS_LIMIT = 256  # distinct pool schemas remembered; pools are few


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


def memoize_schema_checks() -> None:
    """Check each distinct job-variables schema against the meta-schema once per process."""
    from prefect.utilities.schema_tools import validation

    validator_class: Any = validation._VALIDATOR
    check = validator_class.check_schema
    if getattr(check, "automates_memoized", False):
        return  # already applied in this process
    passed: set[str] = set()

    def check_schema(schema: Any, *args: Any, **kwargs: Any) -> None:
        key = json.dumps(schema, sort_keys=True, default=repr)
        if key in passed:
            return
        check(schema, *args, **kwargs)  # raises SchemaError: nothing remembered
        if len(passed) >= _CHECKED_SCHEMAS_LIMIT:
            passed.clear()
        passed.add(key)

    check_schema.automates_memoized = True  # type: ignore[attr-defined]
    validator_class.check_schema = staticmethod(check_schema)


def apply_all() -> None:
    """The workarounds every process of ours carries (CLI, clients, guarded runs)."""
    memoize_timezone_listing()


def apply_server() -> None:
    """The workarounds of the Prefect server process: all of the above, plus schema checks."""
    apply_all()
    memoize_schema_checks()
