"""Headful mode: Chromium with a window, on a virtual display (Xvfb)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from automates.browser.addresses import AddressRule
from automates.browser.launch import LaunchOptions, chromium
from automates.errors import BrowserJobError
from tests.fixtures.browser_site import Site


async def _user_agent(url: str, headful: bool) -> str:
    allowed = AddressRule.build([urlsplit(url).netloc])  # the test site is on loopback
    options = LaunchOptions("/usr/bin/chromium", headful=headful, rule=allowed)
    async with chromium(options, "headful") as browser:
        page = await browser.new_page()
        await page.goto(url)
        agent: str = await page.evaluate("navigator.userAgent")
        return agent


def test_headful_chromium_runs_on_the_virtual_display(
    browser_site: Site, xvfb_display: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", xvfb_display)
    url = f"{browser_site.url}/article"
    # A headless Chromium announces itself; the headful one does not.
    assert "HeadlessChrome" in asyncio.run(_user_agent(url, headful=False))
    assert "HeadlessChrome" not in asyncio.run(_user_agent(url, headful=True))


def test_headful_without_a_display_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(BrowserJobError, match="no DISPLAY"):
        asyncio.run(_user_agent("http://127.0.0.1:9/", headful=True))
