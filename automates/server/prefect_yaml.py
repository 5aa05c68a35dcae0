"""Rendering `prefect.yaml` from the registry.

The registry file is the single source of truth (docs/decisions/0001-registry-source-of-truth.md);
`prefect.yaml` is generated from it so that Prefect's own `prefect deploy --all` deploys the
same thing `automates sync` does. A test keeps the committed file equal to this rendering.
"""

from __future__ import annotations

from typing import Any

import yaml

from automates.registry.model import Registry
from automates.registry.policy import job_variables
from automates.scheduling.realise import prefect_schedule, prefect_yaml_fields
from automates.server.spec import PULL_STEPS, deployment_parameters, prefect_concurrency_limit

HEADER = (
    "# GENERATED from deployments/registry.yaml by `automates render-prefect-yaml`: do not edit.\n"
    "# `automates sync` is the usual way to deploy; this file serves `prefect deploy --all`.\n"
)


def render(registry: Registry, default_pool: str, prefect_version: str) -> str:
    deployments: list[dict[str, Any]] = []
    for automate in registry.deployable:
        description = automate.description
        if automate.runbook:
            description += f"\n\nRunbook: {automate.runbook}"
        deployment: dict[str, Any] = {
            "name": automate.name,
            "entrypoint": automate.flow_entrypoint,
            "description": description,
            "tags": list(automate.tags),
            "concurrency_limit": prefect_concurrency_limit(automate),
            "paused": not automate.enabled,
            "parameters": deployment_parameters(automate),
            "work_pool": {
                "name": automate.work_pool or default_pool,
                "job_variables": job_variables(automate, default_pool),
            },
            "schedules": [
                {
                    **prefect_yaml_fields(
                        prefect_schedule(s.form, s.timezone, automate.jitter_offset(s))
                    ),
                    "slug": s.slug,
                    "active": automate.enabled,
                    **({"parameters": dict(s.parameters)} if s.parameters else {}),
                }
                for s in automate.schedules
            ],
        }
        deployments.append(deployment)
    document = {
        "name": "automates",
        "prefect-version": prefect_version,
        # As sync writes it: each run starts in its worker's checkout, wherever that is
        # (without it, `prefect deploy` would write the deploying host's absolute path).
        "pull": [dict(step) for step in PULL_STEPS],
        "deployments": deployments,
    }
    return HEADER + yaml.safe_dump(document, sort_keys=False, width=100)
