"""Instrumentation of our syncs for `--phases` and `--profile` (bench process only)."""

from __future__ import annotations

import collections
import cProfile
import io
import pstats
import time
from typing import Any


def profile_text(profile: cProfile.Profile, top: int = 25) -> str:
    buffer = io.StringIO()
    stats = pstats.Stats(profile, stream=buffer)
    stats.sort_stats("cumulative").print_stats(top)
    return buffer.getvalue()


class Phases:
    """Wall-clock spans of named calls inside our sync, by wrapping module globals (bench only).

    For a function called many times concurrently, `sum` adds the calls up and `span` is the
    wall time from the first start to the last end.
    """

    def __init__(self) -> None:
        self.calls: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)

    def reset(self) -> None:
        self.calls.clear()

    def wrap(self, module: Any, attribute: str, name: str | None = None) -> None:
        import functools
        import inspect

        original = getattr(module, attribute)
        label = name or f"{module.__name__.rsplit('.', 1)[-1]}.{attribute}"
        calls = self.calls

        if inspect.iscoroutinefunction(original):

            @functools.wraps(original)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    calls[label].append((started, time.perf_counter()))

            setattr(module, attribute, timed_async)
        else:

            @functools.wraps(original)
            def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    calls[label].append((started, time.perf_counter()))

            setattr(module, attribute, timed)

    def install(self) -> None:
        import prefect.types._datetime as prefect_datetime
        from prefect.client.orchestration import PrefectClient

        import automates.server.deploy as deploy
        import automates.server.deployed as deployed
        import automates.sync as sync

        for attribute in (
            "validated_registry",
            "migrate",
            "sync_server",
            "sync_store",
            "_save_block",
        ):
            self.wrap(sync, attribute)
        for attribute in (
            "declared_specs",
            "read_server_state",
            "_ensure_work_pools",
            "_ensure_flows",
            "_create",
            "_schedules",
        ):
            self.wrap(deploy, attribute)
        self.wrap(deployed, "deployed_spec")
        for attribute in (
            "read_flows",
            "read_deployments",
            "read_work_pools",
            "create_deployment",
            "update_deployment",
        ):
            self.wrap(PrefectClient, attribute, f"PrefectClient.{attribute}")
        # Prefect's CronSchedule timezone validator lists every zone of tzdata on each call.
        self.wrap(prefect_datetime, "available_timezones", "zoneinfo.available_timezones")

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for label, spans in sorted(self.calls.items()):
            out[label] = {
                "calls": len(spans),
                "sum_s": round(sum(end - start for start, end in spans), 3),
                "span_s": round(max(e for _, e in spans) - min(s for s, _ in spans), 3),
            }
        return out
