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

Database outages answered 503 (server only): while the server's PostgreSQL restarts (killed and
brought back by supervision), a request fails in the database driver's connect. Prefect answers
503, which its clients retry with backoff (about a minute in all), only for the errors its
`is_client_retryable_exception` lists; a refused connection (`ConnectionRefusedError`, raised
before PostgreSQL even answers) is not among them, so it became a 500, which no client retries:
a flow run starting at that moment exited 1 and was marked Crashed (found by
tests/integration/test_layer_faults.py on a loaded machine). Such an error, anywhere in the
exception's chain, now answers 503 too: the request never reached the database, so retrying it
is safe.

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


def _database_unreachable(exc: BaseException) -> bool:
    """Whether a connection to the database failed somewhere in `exc`'s chain of causes."""
    from asyncpg.exceptions import PostgresConnectionError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError | PostgresConnectionError):
            return True
        current = current.__cause__ or current.__context__
    return False


def retry_database_outages() -> None:
    """Answer 503 (retried by clients) for a request failed by an unreachable database."""
    from prefect.server.api import server

    retryable = server.is_client_retryable_exception
    if getattr(retryable, "automates_patched", False):
        return  # already applied in this process

    def is_client_retryable_exception(exc: Exception) -> bool:
        return retryable(exc) or _database_unreachable(exc)

    is_client_retryable_exception.automates_patched = True  # type: ignore[attr-defined]
    server.is_client_retryable_exception = is_client_retryable_exception


def apply_all() -> None:
    """The workarounds every process of ours carries (CLI, clients, guarded runs)."""
    memoize_timezone_listing()


def apply_server() -> None:
    """The workarounds of the Prefect server process: all of the above, plus schema checks and
    database outages answered 503."""
    apply_all()
    memoize_schema_checks()
    retry_database_outages()
