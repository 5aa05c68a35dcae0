"""The routes file: where alerts go (deployments/routes.yaml, beside the registry).

Routes are the site's, not the automates': the same registry runs on a laptop that only
journals and on a production host that pages; so they live in their own file, read with the
registry's bounded loader and refused whole, naming the route and the field, before sync
writes anything (decision 0033). Secrets are never in the file: a route names where its
secret lives (an environment variable or a Prefect Secret block).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError, model_validator

from automates.errors import DeclarationError, DeclarationProblem
from automates.fields import FieldError, Frozen
from automates.limits import MAX_LIST_ITEMS
from automates.registry.alert_kinds import ROUTABLE, AlertKind, Channel
from automates.registry.delivery import Delivery
from automates.registry.fields import Slug
from automates.registry.loader import problem_of, read_document

if TYPE_CHECKING:
    from automates.registry.model import Automate

ROUTES = "<routes>"
# Always there, even undeclared: every alert is at least journaled.
JOURNAL = "journal"
HTTP_CHANNELS = frozenset({Channel.SLACK, Channel.TEAMS, Channel.DISCORD, Channel.WEBHOOK})
MAX_ROUTES = 64


class SecretRef(Frozen):
    """Where a secret lives: `{env: NAME}` (a variable of the layer's processes) or
    `{secret: NAME}` (a Prefect Secret block)."""

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    secret: Slug | None = None

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if (self.env is None) == (self.secret is None):
            raise ValueError("give exactly one of env (a variable) or secret (a Secret block)")
        return self

    def __str__(self) -> str:
        return f"variable {self.env}" if self.env else f"Secret block {self.secret!r}"


class Route(Frozen):
    name: Slug
    channel: Channel
    url: SecretRef | None = Field(
        default=None, description="slack, teams, discord, webhook: where the URL is kept."
    )
    host: str | None = Field(default=None, max_length=253, description="email: SMTP server.")
    port: int = Field(default=587, ge=1, le=65535, description="email: SMTP port.")
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = Field(default=None, max_length=256)
    password: SecretRef | None = None
    sender: str | None = Field(default=None, max_length=320, description="email: From.")
    to: tuple[str, ...] = Field(default=(), max_length=MAX_LIST_ITEMS)
    rate_limit_per_hour: int = Field(
        default=20, ge=1, le=10_000, description="Past it, alerts are folded into a digest."
    )
    dedupe_window_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        le=30 * 24 * 3600,
        description="An alert identical to one sent this recently (and not resolved since) "
        "is not sent again.",
    )
    digest_seconds: int = Field(
        default=600, ge=10, le=24 * 3600, description="How often folded alerts go out."
    )

    @model_validator(mode="after")
    def _channel_fields(self) -> Route:
        # By value, not by what was written: a synced routing is read back with every field.
        email_fields = {
            name
            for name in ("host", "username", "password", "sender", "to")
            if getattr(self, name) not in (None, ())
        }
        if self.channel in HTTP_CHANNELS:
            if self.url is None:
                raise FieldError("url", f"a {self.channel.value} route needs url: {{env: NAME}}")
            if email_fields:
                raise FieldError(min(email_fields), f"not a field of a {self.channel} route")
        elif self.channel is Channel.EMAIL:
            if self.url is not None:
                raise FieldError("url", "an email route takes host, port, sender and to")
            for needed in ("host", "sender", "to"):
                if not getattr(self, needed):
                    raise FieldError(needed, "an email route needs host, sender and to")
        elif self.url is not None or email_fields:
            raise FieldError(min(email_fields | {"url"}), "a log route takes no settings")
        return self

    @property
    def secret_refs(self) -> dict[str, SecretRef]:
        refs = {"url": self.url, "password": self.password}
        return {field: ref for field, ref in refs.items() if ref is not None}

    @property
    def options(self) -> dict[str, Any]:
        """What the channel needs besides the secrets."""
        if self.channel is not Channel.EMAIL:
            return {}
        return {
            "host": self.host,
            "port": self.port,
            "security": self.security,
            "username": self.username,
            "sender": self.sender,
            "to": list(self.to),
        }


RouteNames = tuple[Slug, ...]


class Routing(Frozen):
    """The routes file: routes, where each alert kind goes, the fallback, the outcome default."""

    routes: tuple[Route, ...] = Field(default=(), max_length=MAX_ROUTES)
    alerts: dict[str, RouteNames] = Field(
        default_factory=dict,
        description="Alert kind (or `default`) → route names.",
    )
    fallback: Slug = Field(
        default=JOURNAL, description="Where an alert that could not be delivered is announced."
    )
    delivery: Delivery = Field(default_factory=Delivery)

    @model_validator(mode="after")
    def _references(self) -> Routing:
        names = [route.name for route in self.routes]
        if len(names) != len(set(names)):
            raise FieldError("routes", f"route names must be unique, got {names}")
        known = {*names, JOURNAL}
        for key, routes in self.alerts.items():
            if key != "default" and key not in ROUTABLE:
                raise FieldError(f"alerts.{key}", f"not an alert kind ({_kinds()})")
            _known_routes(f"alerts.{key}", routes, known)
        _known_routes("fallback", (self.fallback,), known)
        _known_routes("delivery.routes", self.delivery.routes or (), known)
        return self

    @property
    def all_routes(self) -> dict[str, Route]:
        declared = {route.name: route for route in self.routes}
        declared.setdefault(JOURNAL, Route(name=JOURNAL, channel=Channel.LOG))
        return declared

    @property
    def default_routes(self) -> RouteNames:
        return self.alerts.get("default", (JOURNAL,))

    def routes_for(
        self, kind: AlertKind, overrides: dict[str, RouteNames] | None = None
    ) -> RouteNames:
        """Where an alert of this kind goes: the automate's override, the kind's, the default."""
        for table in (overrides or {}, self.alerts):
            if kind.value in table:
                return table[kind.value]
        return self.default_routes


def _known_routes(field: str, routes: tuple[str, ...], known: set[str]) -> None:
    unknown = [name for name in routes if name not in known]
    if unknown:
        raise FieldError(
            field, f"no route named {', '.join(map(repr, unknown))} ({', '.join(sorted(known))})"
        )


def _kinds() -> str:
    return "default, " + ", ".join(kind.value for kind in ROUTABLE)


def load_routing(path: Path) -> Routing:
    """The routes file, validated; absent, the default (everything to the journal)."""
    if not path.exists():
        return Routing()
    try:
        document = read_document(path)
    except DeclarationError as error:
        raise DeclarationError(
            [
                DeclarationProblem(ROUTES, p.field, p.message, thing="routes file")
                for p in error.problems
            ]
        ) from None
    if document is None:
        return Routing()
    if not isinstance(document, dict):
        raise DeclarationError(
            [DeclarationProblem(ROUTES, "file", "must be a mapping", thing="routes file")]
        )
    try:
        return Routing.model_validate(document)
    except ValidationError as error:
        raise DeclarationError(_problems(document, error)) from None


def _problems(document: dict[str, Any], error: ValidationError) -> list[DeclarationProblem]:
    problems = []
    for detail in error.errors():
        location = list(detail["loc"])
        thing, label = "routes file", ROUTES
        if len(location) >= 2 and location[0] == "routes" and isinstance(location[1], int):
            index = location[1]
            item = (document.get("routes") or [None] * (index + 1))[index]
            name = item.get("name") if isinstance(item, dict) else None
            thing, label = "route", str(name) if isinstance(name, str) else f"#{index + 1}"
            location = location[2:]
        field, message = problem_of(location, detail)
        problems.append(DeclarationProblem(label, field, message, thing=thing))
    return problems


def registry_problems(automates: Iterable[Automate], routing: Routing) -> list[DeclarationProblem]:
    """Automates whose `delivery.routes` or `alerts` name a route the routes file lacks."""
    known = set(routing.all_routes)
    problems = []
    for automate in automates:
        named = {"delivery.routes": automate.delivery.routes if automate.delivery else None}
        named.update({f"alerts.{kind}": routes for kind, routes in automate.alerts.items()})
        for field, routes in named.items():
            unknown = [route for route in routes or () if route not in known]
            if unknown:
                problems.append(
                    DeclarationProblem(
                        automate.name,
                        field,
                        f"no route named {', '.join(map(repr, unknown))} in the routes file "
                        f"({', '.join(sorted(known))})",
                    )
                )
    return problems
