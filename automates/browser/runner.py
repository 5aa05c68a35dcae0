"""The worker side of one browser job: claim, re-check, run under a timeout, purge, finish.

The re-check is the kind, the payload and the address rule (decision 0028) as this machine
sees them; the browser then reaches nothing but through the rule's filtering proxy.

What reaches logs and states is counters and a scrubbed error only: never the payload, the
result or a second-factor code.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prefect.logging import get_run_logger

from automates.browser.addresses import AddressRule, AllowedHost, settings_rule
from automates.browser.channel import GateChannel
from automates.browser.egress import check_egress
from automates.browser.handlers import HANDLERS, JobContext
from automates.browser.kinds import check_addresses, parse_payload
from automates.browser.launch import LaunchOptions, chromium
from automates.errors import AutomatesError, BrowserJobError
from automates.settings import Settings
from automates.states import BrowserJobStatus

SECOND_FACTOR_WAIT_SECONDS = 60.0


def _scrubbed(message: str, secrets: set[str]) -> str:
    for secret in secrets:
        message = message.replace(secret, "[redacted]")
    return message[:500]


def _with_echo(rule: AddressRule, echo_url: str) -> AddressRule:
    parts = urlsplit(echo_url)
    if not parts.hostname:
        return rule
    port = parts.port or (443 if parts.scheme == "https" else 80)
    echo = AllowedHost.parse(
        f"[{parts.hostname}]:{port}" if ":" in parts.hostname else f"{parts.hostname}:{port}"
    )
    return replace(rule, allowed=(*rule.allowed, echo))


async def _attempt(
    settings: Settings, job_id: uuid.UUID, claimed: dict[str, Any], context: JobContext
) -> dict[str, Any]:
    # The worker's own whitelist: a kind its code does not know is refused before any launch.
    payload = parse_payload(claimed["kind"], claimed["payload"])
    handler = HANDLERS[type(payload)]
    rule = await asyncio.to_thread(settings_rule, settings)
    await check_addresses(claimed["kind"], payload, rule)
    if settings.browser.proxy and settings.browser.egress_echo_url:
        # The echo is the operator's own choice of URL; the safeguard must reach it.
        rule = _with_echo(rule, settings.browser.egress_echo_url)
    options = LaunchOptions(
        executable=str(settings.browser.executable),
        headful=settings.browser.headful,
        proxy=settings.browser.proxy,
        rule=rule,
        on_refused=context.refuse,
    )
    async with chromium(options, job_id) as browser:
        if settings.browser.proxy:
            await check_egress(browser, settings.browser.egress_echo_url, settings.browser.proxy)
            context.count("egress_checks")
        page = await browser.new_page()
        # The job's own timeout is the one that matters; Playwright's must not fire first.
        page.set_default_timeout(claimed["timeout_seconds"] * 1000 + 5000)
        return await handler(page, payload, context)


async def run_job(job_id: uuid.UUID, settings: Settings | None = None) -> dict[str, int]:
    """Run one job on this worker; returns its counters; raises when the job failed."""
    settings = settings or Settings()
    logger = get_run_logger()
    host = settings.browser.host or socket.gethostname()
    async with GateChannel.from_prefect_settings(job_id, host) as channel:
        claimed = await channel.claim()
        if claimed is None:
            logger.warning("browser job %s is not queued (claimed elsewhere); nothing run", job_id)
            return {"claimed": 0}
        timeout = claimed["timeout_seconds"]
        base = settings.browser.screenshot_dir
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        shots = Path(tempfile.mkdtemp(prefix=f"browser-{job_id}-", dir=base))
        context = JobContext(
            screenshot_dir=shots,
            second_factor=lambda: channel.second_factor(SECOND_FACTOR_WAIT_SECONDS),
        )
        result: dict[str, Any] | None = None
        error: str | None = None
        try:
            result = await asyncio.wait_for(_attempt(settings, job_id, claimed, context), timeout)
        except TimeoutError:
            error = f"timed out after {timeout} s; the browser was killed"
            context.count("timeouts")
        except AutomatesError as failure:
            error = _scrubbed(str(failure), context.secrets)
        except Exception as failure:  # a site's failure is the job's, not the worker's
            first_line = (str(failure).splitlines() or [""])[0]
            error = _scrubbed(f"{type(failure).__name__}: {first_line}", context.secrets)
            if context.refused:  # the page failed because the rule refused what it asked
                more = len(context.refused) - 1
                also = f" (and {more} more)" if more else ""
                error = _scrubbed(
                    f"the address rule refused {context.refused[0]}{also}; {error}",
                    context.secrets,
                )
        finally:
            context.count("screenshots_purged", sum(1 for _ in shots.iterdir()))
            shutil.rmtree(shots, ignore_errors=True)
        status = BrowserJobStatus.DONE if error is None else BrowserJobStatus.FAILED
        await channel.finish(status, result, error, context.counters)
    logger.info(
        "browser job %s (%s) %s; %d result field(s); counters %s",
        job_id,
        claimed["kind"],
        status,
        len(result or {}),
        context.counters,
    )
    if error is not None:
        raise BrowserJobError(f"browser job {job_id} failed: {error}")
    return context.counters
