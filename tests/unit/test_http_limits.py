"""The bounds of the gate and the webhook: per-caller rate limits and JSON depth."""

from __future__ import annotations

import pytest

from automates.errors import SettingsError
from automates.platform.http_limits import CallerLimits, Refused, json_depth


def test_each_caller_has_its_own_window_and_is_told_when_to_retry() -> None:
    callers = CallerLimits("3/hour", "AUTOMATES_WEBHOOK_RATE_LIMIT")
    for _ in range(3):
        callers.check("address", "10.0.0.1")
    with pytest.raises(Refused) as refused:
        callers.check("address", "10.0.0.1")
    assert refused.value.status == 429
    assert 0 < int(refused.value.headers["Retry-After"]) <= 3600
    callers.check("address", "10.0.0.2")  # another caller is not slowed by the first
    callers.check("token", "10.0.0.1")  # nor is a key of another kind


def test_a_refused_request_does_not_use_up_a_longer_window() -> None:
    callers = CallerLimits("1/hour;2/day", "AUTOMATES_GATE_RATE_LIMIT")
    callers.check("address", "a")
    for _ in range(5):
        with pytest.raises(Refused):
            callers.check("address", "a")
    assert callers._limiter.get_window_stats(callers.items[1], "address", "a").remaining == 1


def test_a_bad_rate_is_refused_naming_the_setting() -> None:
    with pytest.raises(SettingsError, match="AUTOMATES_GATE_RATE_LIMIT"):
        CallerLimits("often", "AUTOMATES_GATE_RATE_LIMIT")


def test_json_depth_is_measured_without_recursion() -> None:
    assert json_depth(1) == 0
    assert json_depth({"a": [1, {"b": 2}]}) == 3
    deep: object = 1
    for _ in range(100_000):
        deep = [deep]
    assert json_depth(deep) == 100_000
