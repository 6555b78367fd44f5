"""Debian's Chromium driven by Playwright, for the browser tests: the browser fixture and a tab that records errors.

Never a downloaded browser: /usr/bin/chromium, headless, no sandbox, no GPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 375, "height": 812}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM}; install Debian's package: apt-get install chromium (or `make browser`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Tab:
    """A browser tab that records every console error and uncaught script error."""

    def __init__(self, browser, base: str, viewport: dict = DESKTOP, javascript: bool = True):
        self.base = base
        self.context = browser.new_context(viewport=viewport, java_script_enabled=javascript)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _on_console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url')})")

    def open(self, path: str) -> None:
        response = self.page.goto(self.base + path)
        assert response.status == 200, f"{path} answered {response.status}"

    def path(self) -> str:
        return self.page.url.removeprefix(self.base)


def load_every_image(tab: Tab) -> None:
    """Scroll each lazy image into view, then wait until the browser has finished with all of them."""
    for image in tab.page.locator("main img").all():
        image.scroll_into_view_if_needed()
    tab.page.wait_for_function("Array.from(document.images).every(image => image.complete)")
