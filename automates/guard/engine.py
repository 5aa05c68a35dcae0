"""`python -m automates.guard.engine`: Prefect's flow-run engine, with the guard around the flow.

The worker runs this command instead of `python -m prefect.engine` for every deployment that
carries a guard policy (`AUTOMATES_GUARD`). It wraps the flow that Prefect's engine loads and
then runs Prefect's own engine unchanged, so signals, cancellation, hooks and state handling
stay Prefect's.
"""

from __future__ import annotations

import contextlib
import runpy
from typing import Any

from automates.guard.recording import load_store_ahead
from automates.registry.policy import GuardPolicy
from automates.settings import Settings


def install() -> bool:
    """Make Prefect's flow loader return the guarded flow (why a patch of the loader, and
    not a copy of Prefect's engine: docs/decisions/0040-guard-pipeline.md); False when the
    run carries no guard policy (its flow runs as Prefect loads it)."""
    from prefect import flow_engine

    policy = GuardPolicy.from_env()
    if policy is None:
        return False
    # The checkout's `.env` is not read here: it holds the operator's secrets, and a run gets
    # the layer's settings from its worker (automates/platform/run_env.py) and its own
    # variables from the env files its declaration names (loaded by the guard).
    settings = Settings()
    load_store_ahead(settings.store_block)  # every guarded run journals there; many hold a slot
    load_flow = flow_engine.load_flow

    def load_guarded_flow(flow_run: Any) -> Any:
        from automates.guard.runner import guarded

        return guarded(load_flow(flow_run), policy, settings, owns_process=True)

    flow_engine.load_flow = load_guarded_flow
    return True


if __name__ == "__main__":
    from automates.guard.heartbeats import without_prefect_heartbeats
    from automates.server.prefect_patches import apply_all

    apply_all()
    with without_prefect_heartbeats() if install() else contextlib.nullcontext():
        runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
