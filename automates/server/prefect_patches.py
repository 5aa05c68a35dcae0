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

One TLS context per CA file (every process of ours): each Prefect client, events client and
version check builds its own verified TLS context, `ssl.create_default_context(cafile=...)`,
which parses the whole CA bundle (about 20 ms of CPU), even for an `http://` API. A run's
engine built six before and around its body (about 0.18 s of the 0.5 s a run's process takes
from its fork to its body, docs/benchmarks.md "Pickup"). A verified context is never changed
after it is built (Prefect hands it to httpx as is) and is meant to be shared, so one is built
per CA file (and the file's size and modification time: a replaced bundle is read again) per
process; the run launcher builds it before it forks, so a run's process builds none. The
unverified contexts Prefect builds for `PREFECT_API_TLS_INSECURE_SKIP_VERIFY` are changed
after they are built and stay one per call.

tests/unit/test_prefect_patches.py fails if Prefect moves a patched name, so an upgrade cannot
silently drop a workaround.
"""

from __future__ import annotations

import functools
import json
import os
import ssl
import types
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


# The Prefect modules that build TLS contexts for the API (client, events, version check).
TLS_MODULES = (
    "prefect.client.orchestration",
    "prefect._internal.websockets",
    "prefect._internal.version_checking",
)


@functools.lru_cache(maxsize=8)
def _verified_context(cafile: str, size: int, modified_ns: int) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)


class _SharedVerifiedContexts(types.ModuleType):
    """The `ssl` module as TLS_MODULES see it: the same, but a verified client context for a CA
    file is built once and shared."""

    def __init__(self) -> None:
        super().__init__("ssl", ssl.__doc__)

    def __getattr__(self, name: str) -> Any:
        return getattr(ssl, name)

    def create_default_context(
        self,
        purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH,
        *,
        cafile: str | None = None,
        capath: str | None = None,
        cadata: str | bytes | None = None,
    ) -> ssl.SSLContext:
        if cafile is None or capath is not None or cadata is not None:
            return ssl.create_default_context(purpose, cafile=cafile, capath=capath, cadata=cadata)
        if purpose != ssl.Purpose.SERVER_AUTH:
            return ssl.create_default_context(purpose, cafile=cafile)
        try:
            found = os.stat(cafile)
        except OSError:  # let ssl say what is wrong with it
            return ssl.create_default_context(cafile=cafile)
        return _verified_context(cafile, found.st_size, found.st_mtime_ns)


def share_verified_tls_contexts() -> None:
    """Build each verified TLS context for the Prefect API once per process and CA file."""
    import importlib

    for name in TLS_MODULES:
        module = importlib.import_module(name)
        names = vars(module)  # the module's globals: its `ssl` is what its functions call
        if not isinstance(names.get("ssl"), _SharedVerifiedContexts):
            names["ssl"] = _SharedVerifiedContexts()


def api_tls_context() -> ssl.SSLContext | None:
    """Build, ahead, the verified context a Prefect client of this process's settings uses
    (None when the API's certificates are not checked: those contexts are built per call)."""
    import certifi
    from prefect.settings import get_current_settings

    api = get_current_settings().api
    if api.tls_insecure_skip_verify:
        return None
    cafile = api.ssl_cert_file or certifi.where()
    return _SharedVerifiedContexts().create_default_context(cafile=cafile)


def apply_all() -> None:
    """The workarounds every process of ours carries (CLI, clients, guarded runs)."""
    memoize_timezone_listing()
    share_verified_tls_contexts()


def apply_server() -> None:
    """The workarounds of the Prefect server process: all of the above, plus schema checks and
    database outages answered 503."""
    apply_all()
    memoize_schema_checks()
    retry_database_outages()
