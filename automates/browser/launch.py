"""Launching Chromium for one job, and making sure it is gone afterwards.

Playwright drives the system's Chromium (`browser_executable`); its own browser download is
never used. Each launch carries a marker switch naming the job, so that when a job passes its
timeout every process of its browser can be found and killed even if Playwright cannot close
it cleanly.

Every launch goes through the job's filtering proxy (`automates.browser.filter_proxy`): the
browser reaches no address the address rule forbids, whatever its pages ask.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import psutil
from playwright.async_api import Browser, async_playwright

from automates.browser.addresses import AddressRule
from automates.browser.filter_proxy import FilterProxy
from automates.errors import BrowserJobError

# The flags measured to work with Debian's Chromium here (shared/ENVIRONMENT.md).
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # WebRTC's UDP does not go through a proxy: without this a page could reach the LAN by it.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    # Chromium sends loopback addresses around a proxy by default; nothing may leave any other
    # way than through the job's filtering proxy.
    "--proxy-bypass-list=<-loopback>",
)
CLOSE_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class LaunchOptions:
    executable: str
    headful: bool = False
    proxy: str | None = None  # socks5://host:port, the datacenter topology's upstream
    rule: AddressRule = field(default_factory=AddressRule)  # default: no host allowed beyond public
    on_refused: Callable[[str], None] | None = None  # told each refused connection's reason


def marker(job_id: object) -> str:
    """A switch Chromium ignores, present in the command line of every process of the job."""
    return f"--automates-browser-job={job_id}"


def _arguments(job_id: object) -> list[str]:
    return [*CHROMIUM_FLAGS, marker(job_id)]


@contextlib.asynccontextmanager
async def chromium(options: LaunchOptions, job_id: object) -> AsyncIterator[Browser]:
    """A browser for one job; on the way out (timeout and cancellation included) it is killed."""
    if not os.access(options.executable, os.X_OK):
        raise BrowserJobError(f"no Chromium at {options.executable} (setting browser_executable)")
    if options.headful and not os.environ.get("DISPLAY"):
        raise BrowserJobError("browser_headful is set but there is no DISPLAY (start Xvfb?)")
    async with (
        FilterProxy(options.rule, options.proxy, options.on_refused) as gatekeeper,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(
            executable_path=options.executable,
            headless=not options.headful,
            args=_arguments(job_id),
            proxy={"server": gatekeeper.url},
        )
        try:
            yield browser
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(browser.close()), CLOSE_GRACE_SECONDS)
            kill_job_processes(job_id)


def job_processes(job_id: object) -> list[psutil.Process]:
    """Live processes of this job's browser (found by their marker switch)."""
    wanted = marker(job_id)
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if wanted in (process.info["cmdline"] or []):
                found.append(process)
    return found


def kill_job_processes(job_id: object) -> int:
    """Kill whatever is left of the job's browser; the number of processes killed."""
    processes = job_processes(job_id)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(processes, timeout=CLOSE_GRACE_SECONDS)
    return len(processes)
