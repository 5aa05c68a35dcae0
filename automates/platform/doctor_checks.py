"""`automates doctor`'s checks: each a pure function of facts read beforehand.

The facts are read in doctor.py (the only I/O); the checks, what they judge and the words of
each verdict are here, so that a test can give them any layer's facts without a running one.
What each check looks at is listed in doctor.py's docstring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from automates.alerts.routes import Route

# A schedule whose next tick is further off than this may rightly have no run yet (Prefect's
# scheduler creates runs up to 100 days ahead by default; this stays well inside it).
HORIZON = timedelta(days=30)
# A deployment created or changed this recently may not have been scheduled yet.
GRACE = timedelta(seconds=60)
ROUTE_TIMEOUT_SECONDS = 3.0
SERVER_TIMEOUT_SECONDS = 30.0
MAX_NAMED = 5

UP = "automates up"
SYNC = "automates sync"
# How lifecycle.status words a failed read of the work pools and their workers.
UNREAD = ("workers: cannot read", "workers: the Prefect API did not list")


@dataclass(frozen=True)
class Check:
    """One check's verdict: ok (True), a problem (False) or not checked (None)."""

    name: str
    ok: bool | None
    detail: str
    fix: str | None = None

    @property
    def status(self) -> str:
        return {True: "ok", False: "problem", None: "not checked"}[self.ok]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


# The facts each check judges.


@dataclass(frozen=True)
class ScheduledDeployment:
    name: str
    expects_runs: bool  # not paused, and an active schedule fires within HORIZON
    has_future_run: bool
    updated: datetime | None = None


@dataclass(frozen=True)
class StoreFacts:
    where: str  # the database, redacted
    current: str | None = None  # the store's revision; None: never migrated
    head: str | None = None  # this checkout's
    known: frozenset[str] = frozenset()  # every revision of this checkout
    error: str | None = None  # the store could not be read
    embedded: bool = True  # the embedded PostgreSQL (else AUTOMATES_DATABASE_URL's)


@dataclass(frozen=True)
class RouteProbe:
    name: str
    channel: str
    address: str | None = None  # host:port, never the URL
    error: str | None = None  # why it was not reached; None: reached
    fix: str | None = None
    checked: bool = True  # False: its secret is a Secret block and the server is down


@dataclass
class Facts:
    api_url: str  # without credentials
    external_api: bool
    api_ready: bool
    api_detail: str
    layer_pools: frozenset[str]  # the pools `up` starts a worker on
    browser_pool: str
    store: StoreFacts
    deployments: list[ScheduledDeployment] | None = None  # None: not read
    pools: dict[str, list[str]] = field(default_factory=dict)  # pool → managed deployments
    workers: dict[str, Any] = field(default_factory=dict)  # lifecycle.status's "workers"
    components: dict[str, Any] = field(default_factory=dict)  # lifecycle.status's
    workers_error: str | None = None
    expected_blocks: list[tuple[str, str]] = field(default_factory=list)  # (type slug, name)
    present_blocks: set[tuple[str, str]] | None = None  # None: not read
    server_error: str | None = None  # a read of the server that failed
    routes: list[RouteProbe] | None = None  # None: only the journal is configured
    routes_error: str | None = None  # the routes file could not be read


# The checks: pure.


def check_server(facts: Facts) -> Check:
    if facts.api_ready:
        return Check("server", True, f"the Prefect API at {facts.api_url} is ready")
    fix = (
        "start the Prefect server at AUTOMATES_PREFECT_API_URL (or unset it), then `automates up`"
        if facts.external_api
        else f"`{UP}` (it starts the server and its database; `automates status` shows which "
        "part is down)"
    )
    return Check("server", False, f"the Prefect API at {facts.api_url} is {facts.api_detail}", fix)


def check_scheduler(facts: Facts, now: datetime) -> Check:
    if not facts.api_ready:
        return _not_checked("scheduler")
    if facts.deployments is None:
        return _unread("scheduler", facts.server_error)
    scheduled = [d for d in facts.deployments if d.expects_runs]
    if not scheduled:
        return Check("scheduler", True, "no managed deployment has an active schedule")
    missing = [d for d in scheduled if not d.has_future_run]
    settling = [d for d in missing if d.updated is not None and now - d.updated < GRACE]
    stuck = [d for d in missing if d not in settling]
    if stuck:
        return Check(
            "scheduler",
            False,
            f"{_count(len(stuck), 'deployment')} with an active schedule "
            f"{'has' if len(stuck) == 1 else 'have'} no future Scheduled run: "
            f"{_some(sorted(d.name for d in stuck))} (the server's scheduler is not creating "
            "runs)",
            f"`{UP}` (it restarts the server and its scheduler; `automates status` shows "
            "prefect-server)",
        )
    detail = f"{_count(len(scheduled), 'scheduled deployment')}, each with a future run"
    if settling:
        detail = (
            f"{_count(len(scheduled) - len(settling), 'scheduled deployment')} with a future "
            f"run; {_some(sorted(d.name for d in settling))} changed less than "
            f"{GRACE.seconds} s ago and may not be scheduled yet"
        )
    return Check("scheduler", True, detail)


def check_workers(facts: Facts) -> Check:
    if not facts.api_ready:
        return _not_checked("workers")
    if facts.workers_error is not None:
        return _unread("workers", facts.workers_error)
    if not facts.pools:
        return Check("workers", True, "no work pool has a managed deployment")
    problems, fixes = [], []
    for pool, names in sorted(facts.pools.items()):
        if facts.workers.get(pool, {}).get("live"):
            continue
        component = facts.components.get(f"worker-{pool}", {})
        state = f"; worker-{pool} is {component['state']}" if component.get("state") else ""
        problems.append(f"work pool {pool!r} has no live worker (it serves {_some(names)}){state}")
        fixes.append(_worker_fix(pool, facts))
    if problems:
        return Check("workers", False, "; ".join(problems), "; ".join(dict.fromkeys(fixes)))
    pools = ", ".join(repr(pool) for pool in sorted(facts.pools))
    return Check("workers", True, f"every pool with managed deployments has a live worker: {pools}")


def _worker_fix(pool: str, facts: Facts) -> str:
    if pool in facts.layer_pools:
        return f"`{UP}` starts its worker (its log: .data/run/worker-{pool}.log)"
    if pool == facts.browser_pool:
        return f"start a residential worker on {pool!r}: `workers/residential-worker ENV_FILE`"
    return (
        f"start a worker on {pool!r} on its host: `workers/start-remote-worker ENV_FILE` "
        f"with AUTOMATES_WORK_POOL={pool}"
    )


def check_store(store: StoreFacts) -> Check:
    if store.error is not None:
        fix = (
            f"`{UP}` starts the embedded PostgreSQL"
            if store.embedded
            else f"start the PostgreSQL of AUTOMATES_DATABASE_URL (or correct the URL), then `{UP}`"
        )
        return Check("store", False, store.error, fix)
    if store.current == store.head:
        return Check("store", True, f"migrated to {store.head} ({store.where})")
    if store.current is None:
        return Check(
            "store",
            False,
            f"the store at {store.where} is not migrated (no schema version; this code needs "
            f"{store.head})",
            f"`{UP}` (or `{SYNC}`) migrates it",
        )
    if store.current not in store.known:
        return Check(
            "store",
            False,
            f"the store at {store.where} is at revision {store.current}, which this checkout "
            f"does not know (its head: {store.head}): newer code migrated it",
            "update this checkout to the code that runs the layer (git pull), then `automates "
            "doctor` again",
        )
    return Check(
        "store",
        False,
        f"the store at {store.where} is at revision {store.current}, behind this code's "
        f"{store.head}",
        f"`{UP}` (or `{SYNC}`) migrates it",
    )


def check_blocks(facts: Facts) -> Check:
    if not facts.api_ready:
        return _not_checked("blocks")
    if facts.present_blocks is None:
        return _unread("blocks", facts.server_error)
    missing = [
        f"{slug}/{name}"
        for slug, name in facts.expected_blocks
        if (slug, name) not in facts.present_blocks
    ]
    if missing:
        return Check(
            "blocks",
            False,
            f"missing on the server: {_some(missing)}",
            f"`{SYNC}` saves them",
        )
    return Check("blocks", True, f"{_count(len(facts.expected_blocks), 'block')} present")


def check_routes(facts: Facts) -> Check:
    if facts.routes_error is not None:
        return Check(
            "routes",
            False,
            f"the routes file cannot be read: {facts.routes_error}",
            f"correct the routes file, then `{SYNC}`",
        )
    if not facts.routes:
        return Check("routes", True, "no alert route configured (alerts are journaled): skipped")
    failed = [p for p in facts.routes if p.checked and p.error is not None]
    unchecked = [p for p in facts.routes if not p.checked]
    if failed:
        return Check(
            "routes",
            False,
            "; ".join(f"route {p.name!r} ({p.channel}): {p.error}" for p in failed),
            "; ".join(dict.fromkeys(p.fix for p in failed if p.fix)),
        )
    reached = [p for p in facts.routes if p.checked]
    detail = ", ".join(f"{p.name} ({p.address})" for p in reached)
    detail = f"reachable: {detail}" if reached else ""
    if unchecked:
        names = ", ".join(p.name for p in unchecked)
        later = f"not checked (their URL is a Secret block; the server does not answer): {names}"
        detail = f"{detail}; {later}" if detail else later
        return Check("routes", None if not reached else True, detail)
    return Check("routes", True, detail)


def run_checks(facts: Facts, now: datetime) -> list[Check]:
    return [
        check_server(facts),
        check_scheduler(facts, now),
        check_workers(facts),
        check_store(facts.store),
        check_blocks(facts),
        check_routes(facts),
    ]


def _not_checked(name: str) -> Check:
    return Check(name, None, "the Prefect API does not answer (see server)")


def _unread(name: str, error: str | None) -> Check:
    return Check(
        name,
        False,
        f"cannot read the server: {error or 'unknown error'}",
        "`automates status`; if the server is overloaded or restarting, run doctor again",
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _some(names: Sequence[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:MAX_NAMED])
    more = len(names) - MAX_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


# Facts of a route, pure: where to connect, from its settings and its secrets.


def route_address(route: Route, secrets: Mapping[str, str]) -> tuple[str, int]:
    """The host and port an alert on this route goes to (ValueError if there is none)."""
    from automates.registry.alert_kinds import Channel

    if route.channel is Channel.EMAIL:
        if not route.host:
            raise ValueError("no host")
        return route.host, route.port
    parts = urlsplit((secrets.get("url") or "").strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("url is not an http(s) URL")
    return parts.hostname, parts.port or (443 if parts.scheme.lower() == "https" else 80)


def without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
