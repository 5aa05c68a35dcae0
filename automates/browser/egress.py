"""The datacenter topology's safeguard: no browser job leaves through the server's own address.

Before a job runs behind `browser_proxy`, the echo URL is fetched twice: directly (the
server's own egress address) and by the job's browser through the proxy. The launch is refused
when the proxy does not answer, or when both addresses are the same (the proxy leaks, or
points back at the datacenter).
"""

from __future__ import annotations

import ipaddress

import httpx
from playwright.async_api import Browser
from playwright.async_api import Error as PlaywrightError

from automates.errors import EgressError

ECHO_TIMEOUT_SECONDS = 10.0


def _address(text: str, where: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise EgressError(f"the egress echo answered {where} with no IP address") from None


async def direct_address(echo_url: str) -> str:
    try:
        async with httpx.AsyncClient(timeout=ECHO_TIMEOUT_SECONDS, trust_env=False) as http:
            response = await http.get(echo_url)
            response.raise_for_status()
    except httpx.HTTPError as error:
        raise EgressError(f"cannot reach the egress echo {echo_url} directly: {error}") from None
    return _address(response.text, "directly")


async def proxied_address(browser: Browser, echo_url: str, proxy: str) -> str:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(echo_url, timeout=ECHO_TIMEOUT_SECONDS * 1000)
        text = await page.inner_text("body")
    except PlaywrightError as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise EgressError(f"the proxy {proxy} is down or refuses: {first_line}") from None
    finally:
        await context.close()
    return _address(text, "through the proxy")


async def check_egress(browser: Browser, echo_url: str | None, proxy: str) -> str:
    """The proxied egress address, or EgressError when the job must not launch."""
    if not echo_url:
        raise EgressError("browser_proxy is set without browser_egress_echo_url; refusing")
    own = await direct_address(echo_url)
    seen = await proxied_address(browser, echo_url, proxy)
    if seen == own:
        raise EgressError(f"egress through the proxy {proxy} is the server's own address; refusing")
    return seen
