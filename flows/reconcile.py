"""registry-reconcile: the three-way drift audit, as a recurring automate.

An audit: drift is a finding, not a crash. The run ends Completed, named "Findings", with the
report as an artifact; a run that could not audit at all fails.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.settings import PREFECT_API_URL
from prefect.states import Completed, State

from automates.alerts import catalog
from automates.alerts.outbox import raise_alert
from automates.reconcile import ReconcileReport, reconcile
from automates.settings import Settings
from automates.store.declared import declared_in
from automates.store.engine import transaction
from automates.store.held import schedules_held
from blocks.store import store_engine
from tasks.reporting import markdown_table, publish_markdown


@flow(name="registry-reconcile", log_prints=False)
async def registry_reconcile() -> State:
    """Compare the declared registry, the server's deployments and what imports."""
    settings = Settings(prefect_api_url=PREFECT_API_URL.value())
    engine = store_engine(settings)
    try:
        with transaction(engine) as connection:
            registry = declared_in(connection, settings)
            held = schedules_held(connection, registry, settings.work_pool)
    finally:
        engine.dispose()
    report = await reconcile(settings, registry=registry, held=held)
    logger = get_run_logger()
    summary = (
        f"{report.declared} declared, {report.deployed} deployed, {report.importable} importable, "
        f"{len(report.drifts)} drift(s)"
    )
    logger.info(summary)
    publish_markdown(
        key="registry-reconcile", markdown=_markdown(report, summary), description=summary
    )
    _alert(settings, report)
    if report.has_drift:
        for drift in report.drifts:
            logger.warning("%s %s: %s", drift.kind.value, drift.subject, drift.detail)
        return Completed(name="Findings", message=summary, data=report.as_dict())
    return Completed(message=summary, data=report.as_dict())


def _alert(settings: Settings, report: ReconcileReport) -> None:
    """Drift is an alert (de-duplicated while it lasts); its end, a resolution."""
    findings = [f"{d.kind.value} {d.subject}: {d.detail}" for d in report.drifts]
    alert = catalog.reconcile_drift(findings) if findings else catalog.reconcile_clean()
    engine = store_engine(settings)
    try:
        with transaction(engine) as connection:
            raise_alert(connection, alert)
    finally:
        engine.dispose()


def _markdown(report: ReconcileReport, summary: str) -> str:
    if not report.has_drift:
        return f"# Registry reconcile\n\nNo drift: {summary}.\n"
    rows = [(d.kind.value, d.subject, d.detail) for d in report.drifts]
    return f"# Registry reconcile\n\n{summary}.\n\n" + markdown_table(
        ("kind", "automate / deployment", "detail"), rows
    )
