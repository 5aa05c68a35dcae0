"""Starting one run of an automate's deployment on request: `automates trigger` and the webhook.

Parameters are checked here, before the run exists, against the parameter schema the server
holds for the deployment (the one Prefect enforces, `enforce_parameter_schema`), so a refusal
names each parameter at fault and starts nothing. The run itself is Prefect's
`create_flow_run_from_deployment`: it goes through the worker and the guard like any other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import DeploymentResponse

from automates.errors import RunParametersError
from automates.limits import parameters_problem
from automates.registry.model import MANAGED_TAG


async def managed_deployment(client: PrefectClient, name: str) -> DeploymentResponse | None:
    """The deployment this tool made for the automate `name` (named after it), or None."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    found = await client.read_deployments(
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name]))
    )
    ours = [d for d in found if d.name == name and MANAGED_TAG in d.tags]
    return ours[0] if ours else None


def parameter_problems(
    schema: Mapping[str, Any] | None, defaults: Mapping[str, Any], given: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """(parameter, what is wrong) for the parameters `given` over the deployment's `defaults`.
    Values too deep, too large or not JSON (automates/limits.py, as for declared parameters) are
    refused before the schema's recursive check sees them."""
    from prefect.utilities.schema_tools import validate

    bounded = [(name, parameters_problem({name: value})) for name, value in sorted(given.items())]
    too_much = [(name, problem) for name, problem in bounded if problem is not None]
    if not too_much and (problem := parameters_problem(dict(given))) is not None:
        too_much.append(("(parameters)", problem))
    if too_much:
        return too_much

    schema = dict(schema or {})
    properties: dict[str, Any] = schema.get("properties") or {}
    known = ", ".join(sorted(properties)) or "none"
    problems = [
        (name, f"no such parameter (the flow takes: {known})")
        for name in sorted(given)
        if name not in properties
    ]
    merged = {**defaults, **given}
    problems.extend(
        (name, "required, and the deployment has no default")
        for name in schema.get("required") or ()
        if name not in merged
    )
    relevant = {k: v for k, v in merged.items() if k in properties}
    for error in validate(relevant, schema, ignore_required=True):
        path = error.json_path.removeprefix("$").removeprefix(".") or "(parameters)"
        problems.append((path, error.message))
    return problems


def checked_parameters(
    deployment: DeploymentResponse, automate: str, given: Mapping[str, Any]
) -> dict[str, Any]:
    """`given`, once it fits the deployment's parameter schema; else RunParametersError."""
    problems = parameter_problems(deployment.parameter_openapi_schema, deployment.parameters, given)
    if problems:
        lines = "; ".join(f"parameter {name!r}: {message}" for name, message in problems)
        raise RunParametersError(f"{automate}: {lines}; no run was started")
    return dict(given)


def parameters_from_pairs(pairs: Iterable[str], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """`NAME=VALUE` pairs of the command line as parameters. A string parameter takes VALUE
    as written; any other reads it as JSON (`count=3`, `dry=true`, `ids=[1,2]`)."""
    properties: dict[str, Any] = dict((schema or {}).get("properties") or {})
    parameters: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise RunParametersError(f"--param {pair!r}: expected NAME=VALUE")
        if properties.get(name, {}).get("type") == "string":
            parameters[name] = raw
            continue
        try:
            parameters[name] = json.loads(raw)
        except RecursionError:
            raise RunParametersError(f"--param {name}: nested too deep to read") from None
        except ValueError:
            parameters[name] = raw  # not JSON: the schema check says whether text fits
    return parameters


async def start_run(
    client: PrefectClient,
    deployment: DeploymentResponse,
    parameters: Mapping[str, Any],
    tags: Iterable[str],
) -> FlowRun:
    """One run of the deployment now, with `parameters` over its defaults."""
    return await client.create_flow_run_from_deployment(
        deployment.id, parameters=dict(parameters), tags=list(tags)
    )
