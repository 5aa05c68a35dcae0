from __future__ import annotations

from automates.registry.loader import parse_registry
from automates.registry.policy import GUARD_COMMAND, GUARD_ENV, GuardPolicy, job_variables
from tests.fixtures.projects import automate


def policy(**fields: object) -> GuardPolicy:
    registry = parse_registry({"automates": [automate("a1", **fields)]})
    return GuardPolicy.of(registry.automates[0])


def test_retry_delays_double_with_bounded_stable_jitter() -> None:
    p = policy(retries=3, retry_backoff_seconds=10)
    delays = [p.retry_delay(n, seed="run-1") for n in (1, 2, 3)]
    for n, delay in enumerate(delays):
        assert 10 * 2**n <= delay <= 10 * 2**n * 1.25
    assert delays == [p.retry_delay(n, seed="run-1") for n in (1, 2, 3)]  # reproducible
    assert delays != [p.retry_delay(n, seed="run-2") for n in (1, 2, 3)]  # not in lockstep


def test_audits_soft_fail_by_default_and_others_do_not() -> None:
    assert policy(family="audits").soft_fail is True
    assert policy(family="backups").soft_fail is False
    assert policy(family="backups", soft_fail=True).soft_fail is True


def test_the_deployment_carries_the_policy_to_the_worker() -> None:
    registry = parse_registry({"automates": [automate("a1", timeout_seconds=900, retries=2)]})
    variables = job_variables(registry.automates[0])
    assert variables["command"] == GUARD_COMMAND
    decoded = GuardPolicy.from_env(variables["env"])
    assert decoded is not None
    assert (decoded.automate, decoded.timeout_seconds, decoded.retries) == ("a1", 900, 2)
    assert GUARD_ENV in variables["env"]


def test_the_policy_takes_its_shared_fields_and_defaults_from_the_declaration() -> None:
    from automates.registry.model import Automate
    from automates.registry.policy import SAME_AS_DECLARED

    for name in SAME_AS_DECLARED:
        declared = Automate.model_fields[name].get_default(call_default_factory=True)
        assert GuardPolicy.model_fields[name].get_default() == declared, name
    # And every other policy field is one the guard derives, not a copy to keep in step.
    derived = {"automate", "soft_fail", "advisory_lock", "declaration_digest", "service"}
    derived |= {"once_command"}
    assert set(GuardPolicy.model_fields) == set(SAME_AS_DECLARED) | derived
