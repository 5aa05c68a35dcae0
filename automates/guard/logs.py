"""Where the guard's lines go: the flow run's log (the Prefect UI shows it) inside a run,
the `automates.guard` logger outside one."""

from __future__ import annotations

import logging

from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]

fallback = logging.getLogger("automates.guard")


def run_logger() -> Logger:
    """The flow run's logger when called inside a run, else the guard's own."""
    try:
        return get_run_logger()
    except MissingContextError:
        return fallback
