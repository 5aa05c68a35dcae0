"""One Playwright handler per job kind.

A handler receives a fresh page and its kind's validated payload, and returns the result (the
data the job exists for; it may be personal and is never logged). It reads payload fields as
data: URLs are navigated to, values typed into form fields, nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Page

from automates.browser.kinds import PageSnapshot, Payload, PortalLogin


@dataclass
class JobContext:
    """What a handler may use besides its page: screenshots, the second factor, counters."""

    screenshot_dir: Path
    second_factor: Callable[[], Awaitable[str]]
    counters: dict[str, int] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)  # scrubbed from any error message
    refused: list[str] = field(default_factory=list)  # connections the address rule refused

    def refuse(self, reason: str) -> None:
        self.refused.append(reason)
        self.count("requests_refused")

    def count(self, name: str, by: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by

    async def screenshot(self, page: Page, name: str) -> None:
        await page.screenshot(path=str(self.screenshot_dir / f"{name}.png"))
        self.count("screenshots")


Handler = Callable[[Page, Any, JobContext], Awaitable[dict[str, Any]]]


async def page_snapshot(page: Page, payload: PageSnapshot, context: JobContext) -> dict[str, Any]:
    response = await page.goto(payload.url, wait_until="load")
    await context.screenshot(page, "loaded")
    text = (await page.inner_text("body"))[: payload.max_text_chars]
    context.count("pages")
    return {
        "title": await page.title(),
        "text": text,
        "http_status": response.status if response else None,
    }


async def portal_login(page: Page, payload: PortalLogin, context: JobContext) -> dict[str, Any]:
    context.secrets.add(payload.password)
    await page.goto(payload.login_url, wait_until="load")
    await page.fill("#username", payload.username)
    await page.fill("#password", payload.password)
    await page.click("#submit")
    await page.wait_for_selector("#code")
    context.count("pages")
    await context.screenshot(page, "second-factor")
    code = await context.second_factor()
    context.secrets.add(code)
    context.count("second_factors")
    await page.fill("#code", code)
    await page.click("#submit")
    welcome = await page.wait_for_selector(payload.welcome_selector)
    context.count("pages")
    return {"title": await page.title(), "welcome": (await welcome.inner_text()) if welcome else ""}


HANDLERS: dict[type[Payload], Handler] = {
    PageSnapshot: page_snapshot,
    PortalLogin: portal_login,
}
