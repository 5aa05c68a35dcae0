"""breaker-probe: the half-open step of every automate's circuit breaker.

For each open breaker past its cool-down it starts one run of the automate (the breaker turns
half-open); the guard of that run closes the breaker and resumes the schedules on success, or
re-opens it on failure. A probe that never reported back (its run crashed before its hooks)
re-opens the breaker after another cool-down.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import FlowRun
from prefect.deployments.flow_runs import run_deployment
from prefect.states import Completed, State

from automates.guard.breaker import deployment_of
from automates.scheduling.breaker import on_probe
from automates.states import BreakerState
from automates.store.breakers import due_for_probe, save_breaker
from automates.store.engine import transaction
from blocks.store import store_engine


@flow(name="breaker-probe")
def breaker_probe() -> State:
    """Start one probe run for each open circuit breaker whose cool-down has passed."""
    logger = get_run_logger()
    now = datetime.now(UTC)
    probed, reopened = [], []
    engine = store_engine()
    try:
        with transaction(engine) as connection:
            for breaker in due_for_probe(connection, now):
                automate, after = breaker.automate, on_probe(breaker, now)
                if after.state is BreakerState.OPEN:
                    save_breaker(connection, after)
                    reopened.append(automate)
                    logger.warning("probe of %s never reported back: breaker re-opened", automate)
                    continue
                deployment_id = deployment_of(automate)
                if deployment_id is None:
                    logger.warning("no deployment for %s: run `automates sync`", automate)
                    continue
                save_breaker(connection, after)
                run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync in a sync flow
                    deployment_id, timeout=0, as_subflow=False, tags=["breaker-probe"]
                )
                probed.append(automate)
                logger.info("probing %s with run %s", automate, run.name)
    finally:
        engine.dispose()
    summary = f"{len(probed)} probe run(s) started, {len(reopened)} breaker(s) re-opened"
    return Completed(message=summary, data={"probed": probed, "reopened": reopened})
