"""A route's secrets, read where they live: an environment variable or a Prefect Secret block.

They are read when needed (at sync, to check them; at each send) and kept nowhere: not in the
store, not in a log line, not in a problem's message, which names the route, the field and
where the secret was looked for.
"""

from __future__ import annotations

import os
from typing import Any

from automates.alerts.routes import Route, Routing, SecretRef
from automates.errors import AutomatesError, DeclarationError, DeclarationProblem
from automates.registry.alert_kinds import Channel


class RouteSecretError(AutomatesError):
    """A route's secret cannot be read; the message names the route, the field and where."""

    def __init__(self, route: str, field: str, message: str) -> None:
        self.problem = DeclarationProblem(route, field, message, thing="route")
        super().__init__(str(self.problem))


def read_secret(ref: SecretRef) -> str | None:
    """The secret's value, None when unset or empty. Blocking (a Secret block is read from the
    Prefect API): call it from a thread in async code."""
    if ref.env is not None:
        return os.environ.get(ref.env) or None
    from prefect.blocks.system import Secret

    assert ref.secret is not None
    try:
        block: Any = Secret.load(ref.secret, _sync=True)  # type: ignore[call-arg]
    except ValueError:  # Prefect: no block document of that name
        return None
    value = block.get()
    return value if isinstance(value, str) and value else None


def route_secrets(route: Route) -> dict[str, str]:
    """The route's secrets by field; RouteSecretError naming the first that cannot be read."""
    found = {}
    for field, ref in route.secret_refs.items():
        value = read_secret(ref)
        if value is None:
            raise RouteSecretError(route.name, field, f"{ref} is not set (or empty)")
        found[field] = value
    return found


def route_problems(routing: Routing, *, blocks: bool = True) -> list[DeclarationProblem]:
    """Every route whose secret is missing or whose URL the channel cannot use. Without
    `blocks` (no server at hand), Secret blocks are not read and their routes not checked."""
    routes = [r for r in routing.all_routes.values() if r.channel is not Channel.LOG]
    if not routes:
        return []  # nothing to read or check: apprise stays unimported (every sync, `up`)
    from automates.alerts.channels import check_url

    problems = []
    for route in routes:
        if not blocks and any(ref.secret for ref in route.secret_refs.values()):
            continue
        try:
            secrets = route_secrets(route)
        except RouteSecretError as error:
            problems.append(error.problem)
            continue
        reason = check_url(route.channel, route.options, secrets)
        if reason is not None:
            field = "url" if route.url is not None else "to"
            problems.append(DeclarationProblem(route.name, field, reason, thing="route"))
    return problems


def check_routes(routing: Routing, *, blocks: bool = True) -> None:
    problems = route_problems(routing, blocks=blocks)
    if problems:
        raise DeclarationError(problems)
