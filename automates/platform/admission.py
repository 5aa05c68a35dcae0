"""What a worker of this layer agrees to run: only what a declaration says.

A Prefect flow run can carry its own job variables (`prefect deployment run --job-variable`,
the UI's custom run, `POST /api/deployments/{id}/create_flow_run`, a `PATCH` of the run), and
job variables decide the process a worker starts (`command`, `env`, `working_dir`). Any caller
who may start a run could then make the worker execute anything. Its parameters are checked by
the server only when the caller does not turn the check off (`enforce_parameter_schema` is a
per-run override too). So every worker of the layer checks each run itself, before it starts
anything, and refuses a run that:

- does not come from a deployment the layer made (tag `managed-by:automates`, or the browser
  deployment's own tag);
- overrides any job variable of its deployment;
- runs on a deployment whose job variables are not the ones sync writes (the guard's command
  and policy, nothing else; Prefect's engine command for the browser deployment), or whose
  pull steps do more than move into the checkout;
- carries a parameter its deployment's schema does not declare, a value that does not fit the
  schema, or parameters larger than `MAX_PARAMETER_BYTES` in all.

A refused run ends `Failed` (state name `Refused`) with the reason, and its process never
starts (docs/decisions/0032-run-admission.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from automates.browser.deploy import JOB_VARIABLES as BROWSER_JOB_VARIABLES
from automates.browser.deploy import TAG as BROWSER_TAG
from automates.registry.model import MANAGED_TAG
from automates.registry.policy import GUARD_COMMAND, GUARD_ENV
from automates.server.spec import SET_WORKING_DIRECTORY

REFUSED = "Refused"
# Parameters are small declarations (names, flags, a prompt): 64 KiB is generous for those and
# keeps a hostile caller from handing a run, its logs and its journal megabytes.
MAX_PARAMETER_BYTES = 64 * 1024


def refusal(deployment: Any | None, flow_run: Any) -> str | None:
    """Why a worker of this layer must not run `flow_run`, or None when it may.

    `deployment` is the run's deployment as the server holds it (`DeploymentResponse`), None
    when the run has none; `flow_run` is Prefect's `FlowRun`.
    """
    if deployment is None:
        return "the run has no deployment: this layer's workers run declared automates only"
    tags = set(deployment.tags or ())
    if MANAGED_TAG not in tags and BROWSER_TAG not in tags:
        return (
            f"deployment {deployment.name!r} was not made by `automates sync` (no tag "
            f"{MANAGED_TAG!r}): this layer's workers run declared automates only"
        )
    declared_variables = dict(deployment.job_variables or {})
    overridden = _overrides(declared_variables, dict(flow_run.job_variables or {}))
    if overridden:
        return (
            f"the run overrides job variables ({', '.join(overridden)}) of {deployment.name!r}; "
            "the declaration fixes the command, its working folder and its environment"
        )
    problem = _deployment_problem(deployment.name, tags, declared_variables) or _pull_problem(
        deployment.name, tags, list(deployment.pull_steps or ())
    )
    if problem is not None:
        return problem
    return parameter_problem(deployment.parameter_openapi_schema, dict(flow_run.parameters or {}))


def parameter_problem(
    schema: Mapping[str, Any] | None, parameters: Mapping[str, Any]
) -> str | None:
    """What is wrong with a run's `parameters` against its deployment's schema, or None."""
    from prefect.utilities.schema_tools import validate

    size = len(json.dumps(parameters, default=str))
    if size > MAX_PARAMETER_BYTES:
        return f"the run's parameters weigh {size} bytes; at most {MAX_PARAMETER_BYTES} pass"
    properties: Mapping[str, Any] = dict(schema or {}).get("properties") or {}
    unknown = sorted(name for name in parameters if name not in properties)
    if unknown:
        takes = ", ".join(sorted(properties)) or "none"
        return f"parameter(s) {', '.join(unknown)} are not declared (the flow takes: {takes})"
    for error in validate(dict(parameters), dict(schema or {}), ignore_required=True):
        where = error.json_path.removeprefix("$").removeprefix(".") or "(parameters)"
        return f"parameter {where}: {error.message}"
    return None


def _overrides(declared: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    """The job variables the run sets to something else than its deployment does."""
    names: list[str] = []
    for name, value in sorted(given.items()):
        if name == "env" and isinstance(value, Mapping):
            declared_env = declared.get("env") or {}
            names.extend(
                f"env.{key}" for key, item in sorted(value.items()) if declared_env.get(key) != item
            )
        elif declared.get(name) != value:
            names.append(name)
    return names


def _pull_problem(name: str, tags: set[str], steps: list[Any]) -> str | None:
    """Sync's deployments move into the checkout and fetch nothing: a pull step that clones or
    installs would run code that no declaration names."""
    if MANAGED_TAG not in tags:
        return None  # the browser deployment may clone its code (automates browser deploy)
    shaped = (
        len(steps) == 1
        and isinstance(steps[0], Mapping)
        and set(steps[0]) == {SET_WORKING_DIRECTORY}
        and isinstance(steps[0][SET_WORKING_DIRECTORY], Mapping)
        and set(steps[0][SET_WORKING_DIRECTORY]) == {"directory"}
    )
    if not shaped:
        return (
            f"deployment {name!r} has pull steps that `automates sync` did not write (only "
            "moving into the checkout is accepted); run `automates sync`"
        )
    return None


def _deployment_problem(name: str, tags: set[str], variables: Mapping[str, Any]) -> str | None:
    """Whether the deployment's job variables are the ones sync (or `browser deploy`) wrote."""
    if MANAGED_TAG not in tags:  # the browser deployment: Prefect's own engine, nothing else
        # (none at all: as `browser deploy` wrote it before it named the engine's command)
        if variables and dict(variables) != BROWSER_JOB_VARIABLES:
            return (
                f"deployment {name!r} has job variables ({', '.join(sorted(variables))}) that "
                "`automates browser deploy` did not write"
            )
        return None
    env = variables.get("env")
    if (
        set(variables) != {"command", "env"}
        or variables.get("command") != GUARD_COMMAND
        or not isinstance(env, Mapping)
        or set(env) != {GUARD_ENV}
    ):
        return (
            f"deployment {name!r} has job variables that `automates sync` did not write "
            "(only the guard's command and policy are accepted); run `automates sync`"
        )
    return None
