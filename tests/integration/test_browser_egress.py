"""The datacenter topology's safeguard, with real Chromium and a real local SOCKS5 proxy."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Error as PlaywrightError

from automates.browser.addresses import AddressRule
from automates.browser.egress import check_egress
from automates.browser.launch import LaunchOptions, chromium
from automates.errors import EgressError
from tests.conftest import free_port
from tests.fixtures.browser_site import Site, serve_sink
from tests.fixtures.browser_socks import socks5_proxy

CHROMIUM = "/usr/bin/chromium"


def _options(proxy: str, url: str) -> LaunchOptions:
    """Through `proxy`, with the test site (on loopback) allowed: decision 0028."""
    allowed = AddressRule.build([urlsplit(url).netloc] if url else [])
    return LaunchOptions(CHROMIUM, proxy=proxy, rule=allowed)


async def _egress(proxy: str, echo_url: str) -> str:
    async with chromium(_options(proxy, echo_url), "egress-test") as browser:
        return await check_egress(browser, echo_url, proxy)


async def _through(proxy: str, url: str) -> str:
    async with chromium(_options(proxy, url), "egress-page") as browser:
        seen = await check_egress(browser, url.rsplit("/", 1)[0] + "/ip", proxy)
        page = await browser.new_page()
        await page.goto(url)
        return f"{seen} {await page.title()}"


def test_a_residential_egress_is_allowed_and_the_page_loads_through_it(
    browser_site: Site,
) -> None:
    with socks5_proxy(source_address="127.0.0.2") as proxy:
        assert asyncio.run(_through(proxy, f"{browser_site.url}/article")) == (
            "127.0.0.2 Quarterly notes"
        )


def test_egress_equal_to_the_servers_own_address_is_refused(browser_site: Site) -> None:
    with (
        socks5_proxy(source_address="127.0.0.1") as proxy,
        pytest.raises(EgressError, match="server's own address"),
    ):
        asyncio.run(_egress(proxy, f"{browser_site.url}/ip"))


def test_a_proxy_that_is_down_is_refused(browser_site: Site) -> None:
    proxy = f"socks5://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(EgressError, match="is down"):
        asyncio.run(_egress(proxy, f"{browser_site.url}/ip"))


def test_a_proxy_without_an_echo_url_is_refused() -> None:
    with pytest.raises(EgressError, match="browser_egress_echo_url"):
        asyncio.run(_egress("socks5://127.0.0.1:1", ""))


def test_through_the_proxy_a_redirect_to_loopback_never_reaches_it(browser_site: Site) -> None:
    """The server side's case: the upstream proxy would reach the server's own loopback."""

    async def redirected(proxy: str, to: str) -> None:
        async with chromium(_options(proxy, browser_site.url), "egress-redirect") as browser:
            page = await browser.new_page()
            await page.goto(f"{browser_site.url}/redirect?to={to}")

    with (
        socks5_proxy(source_address="127.0.0.2") as proxy,
        serve_sink("127.0.0.1") as sink,
    ):
        with pytest.raises(PlaywrightError, match="ERR_SOCKS_CONNECTION_FAILED"):
            asyncio.run(redirected(proxy, f"{sink.url}/api/admin/settings"))
        assert sink.hits == []
