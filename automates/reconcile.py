"""`automates reconcile`: declared versus deployed versus importable.

The reference system could not say which of its declared recurring automates were really
scheduled (seed 000, "Registry ↔ scheduling reconciliation"). This names every gap:

- orphan: declared recurring and enabled, but no active schedule on the server;
- undeployed: declared runnable (oneshot, tool, meta) but no deployment on the server;
- ghost: a deployment on the server that nobody declares;
- broken: the entrypoint's file is missing, or importing it fails;
- mismatch: deployed, but a field differs (schedule, timezone, limit, tags, pool, ...);
- stopped: a service automate that is enabled, but whose loop does not run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from prefect.client.orchestration import PrefectClient

from automates.registry.entrypoints import probe_imports, static_error
from automates.registry.model import Kind, Registry
from automates.server.client import prefect_client
from automates.server.deployed import read_server_state
from automates.server.spec import DeploymentSpec, declared_spec, differences
from automates.settings import Settings
from automates.store.declared import declared_registry


class DriftKind(StrEnum):
    ORPHAN = "orphan"
    UNDEPLOYED = "undeployed"
    GHOST = "ghost"
    BROKEN = "broken"
    MISMATCH = "mismatch"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Drift:
    kind: DriftKind
    subject: str  # the automate, or for a ghost the deployment "flow/name"
    detail: str
    field: str | None = None
    declared: Any = None
    deployed: Any = None


@dataclass
class ReconcileReport:
    declared: int = 0
    deployed: int = 0
    importable: int = 0
    drifts: list[Drift] = field(default_factory=list)

    @property
    def has_drift(self) -> bool:
        return bool(self.drifts)

    def of_kind(self, kind: DriftKind) -> list[Drift]:
        return [d for d in self.drifts if d.kind is kind]

    def as_dict(self) -> dict[str, Any]:
        counts = {kind.value: len(self.of_kind(kind)) for kind in DriftKind}
        return {
            "declared": self.declared,
            "deployed": self.deployed,
            "importable": self.importable,
            "drift": self.has_drift,
            "counts": counts,
            "drifts": [
                {
                    **asdict(d),
                    "kind": d.kind.value,
                    "declared": _jsonable(d.declared),
                    "deployed": _jsonable(d.deployed),
                }
                for d in self.drifts
            ],
        }


async def reconcile(
    settings: Settings,
    *,
    registry: Registry | None = None,
    held: frozenset[str] = frozenset(),
) -> ReconcileReport:
    """The drift report; `held` names automates whose open breaker keeps schedules paused."""
    registry = registry or declared_registry(settings)
    root = settings.project_root
    report = ReconcileReport(declared=len(registry.automates))

    broken: dict[str, str] = {}
    for automate in registry.automates:
        error = static_error(automate, root)
        if error is not None:
            broken[automate.name] = error
    unreadable = set(broken)  # no flow can be read from these sources
    candidates = [a for a in registry.automates if a.name not in broken]
    failures = probe_imports(sorted({a.flow_entrypoint for a in candidates}), root)
    for automate in candidates:
        if automate.flow_entrypoint in failures:
            broken[automate.name] = f"import fails: {failures[automate.flow_entrypoint]}"
    report.importable = len(registry.automates) - len(broken)
    fields = {a.name: "command" if a.is_script else "entrypoint" for a in registry.automates}
    report.drifts.extend(
        Drift(DriftKind.BROKEN, name, error, fields[name]) for name, error in sorted(broken.items())
    )

    async with prefect_client(settings.api_url) as client:
        state = await read_server_state(client)
        report.drifts.extend(await _stopped_services(client, registry, settings))
    report.deployed = len(state.deployments)

    claimed: set[str] = set()
    for automate in registry.deployable:
        scheduled = automate.kind is Kind.RECURRING and automate.enabled
        missing = Drift(
            DriftKind.ORPHAN if scheduled else DriftKind.UNDEPLOYED,
            automate.name,
            "no deployment on the server",
        )
        if automate.name in unreadable:
            # The flow name cannot be read from the source: match on the deployment name.
            same = {n for n, d in state.deployments.items() if d.spec.name == automate.name}
            claimed.update(same)
            if not same:
                report.drifts.append(missing)
            continue
        spec = declared_spec(automate, root, settings.work_pool, held=automate.name in held)
        current = state.deployments.get(spec.full_name)
        if current is None:
            report.drifts.append(missing)
            continue
        claimed.add(spec.full_name)
        report.drifts.extend(_compare(automate.name, automate.kind, spec, current.spec))

    report.drifts.extend(
        Drift(DriftKind.GHOST, name, "deployed on the server but declared nowhere")
        for name in sorted(state.deployments.keys() - claimed)
    )
    return report


async def _stopped_services(
    client: PrefectClient, registry: Registry, settings: Settings
) -> list[Drift]:
    from automates.server.services import service_problem

    drifts = []
    now = datetime.now(UTC)
    for service in registry.automates:
        if service.kind is not Kind.SERVICE or not service.enabled:
            continue
        problem = await service_problem(client, service, settings.run_pending_grace_seconds, now)
        if problem is not None:
            drifts.append(Drift(DriftKind.STOPPED, service.name, f"service should run: {problem}"))
    return drifts


def _compare(
    name: str, kind: Kind, declared: DeploymentSpec, deployed: DeploymentSpec
) -> list[Drift]:
    drifts = []
    if kind is Kind.RECURRING and declared.active_schedules and not deployed.active_schedules:
        what = "deployment paused" if deployed.paused else "every schedule inactive"
        drifts.append(Drift(DriftKind.ORPHAN, name, f"no active schedule on the server ({what})"))
    changed = differences(declared, deployed)
    if "schedules" in changed and _timing(declared) == _timing(deployed):
        del changed["schedules"]  # only activity differs
        differing = [
            f"{want.slug} ({'active' if have.active else 'inactive'} on the server)"
            for want, have in zip(declared.schedules, deployed.schedules, strict=True)
            if want.active != have.active
        ]
        if differing and not drifts:
            drifts.append(
                Drift(
                    DriftKind.MISMATCH,
                    name,
                    f"schedule activity differs from the declaration: {', '.join(differing)}",
                    "schedules",
                    [s.active for s in declared.schedules],
                    [s.active for s in deployed.schedules],
                )
            )
    if drifts:
        changed.pop("paused", None)
    for field_name, (want, have) in sorted(changed.items()):
        if field_name == "schedules":
            want, have = _timing(declared), _timing(deployed)
        drifts.append(
            Drift(
                DriftKind.MISMATCH,
                name,
                f"{field_name}: declared {_short(want)}, deployed {_short(have)}",
                field_name,
                want,
                have,
            )
        )
    return drifts


def _timing(spec: DeploymentSpec) -> list[str]:
    return [
        f"{s.slug}: {s.cron or s.rrule or f'every {s.interval_seconds:g}s from {s.anchor}'}"
        f" {s.timezone}" + (f" {s.parameters}" if s.parameters else "")
        for s in spec.schedules
    ]


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value
