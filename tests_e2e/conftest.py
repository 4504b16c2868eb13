"""Fixtures of the browser test: the demo on free ports and Debian's Chromium.

Run with ``scripts/test-e2e``. Screenshots and the servers' logs go to
``artifacts/e2e/``; with ``E2E_UPDATE_DOCS=1`` the screenshots the README shows
are copied to ``docs/images/`` as well.
"""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import re
import shutil

from playwright.sync_api import BrowserContext, Page, Route, expect, sync_playwright
import pytest

from demo.launch import DOMAIN, PASSWORD, USERNAME, Demo, DemoSettings, free_port
from tests_e2e.helpers import (
    ARTIFACTS,
    BLANK_PNG,
    CHROMIUM,
    CHROMIUM_ARGS,
    PROFILE,
    VIEWPORT,
    BrowserLog,
    HomeAssistantApi,
    Screenshots,
    is_loopback,
)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """A fresh artifacts directory."""
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def demo(artifacts: Path) -> Iterator[Demo]:
    """The simulator (car parked) and Home Assistant on free loopback ports."""
    settings = DemoSettings(
        state_dir=artifacts / "demo",
        ha_port=free_port(),
        sim_port=free_port(),
        profile=PROFILE,
        with_day=False,
    )
    with Demo(settings) as running:
        yield running


@pytest.fixture(scope="session")
def api(demo: Demo) -> HomeAssistantApi:
    """REST access for cross-checks."""
    return HomeAssistantApi(demo)


@pytest.fixture(scope="session")
def browser_log() -> BrowserLog:
    """Console messages and errors of every page of the test."""
    return BrowserLog()


@pytest.fixture(scope="session")
def shots(artifacts: Path) -> Iterator[Screenshots]:
    """Screenshot helper; captures that had to be retried go to the artifacts."""
    screenshots = Screenshots(artifacts, os.environ.get("E2E_UPDATE_DOCS") == "1")
    yield screenshots
    if screenshots.retried:
        (artifacts / "screenshots-retried.log").write_text(
            "\n".join(screenshots.retried) + "\n", encoding="utf-8"
        )


@pytest.fixture(scope="session")
def browser_context(
    browser_log: BrowserLog, artifacts: Path
) -> Iterator[BrowserContext]:
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test-e2e installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(
            viewport=VIEWPORT,  # type: ignore[arg-type]
            locale="en-US",
            timezone_id="Europe/Warsaw",  # the demo home's time zone
        )
        context.set_default_timeout(30_000)

        def offline(route: Route) -> None:
            if is_loopback(route.request.url):
                route.continue_()
            else:
                route.abort()

        def brand_icon(route: Route) -> None:
            # Home Assistant serves brand images itself: a custom
            # integration's from its brand/ folder, the others' from the
            # brands CDN, which this offline machine cannot reach (a 404 and
            # a console error for every integration the add-integration
            # dialog lists). A blank image stands in for those; this
            # integration's own image still comes from Home Assistant.
            route.fulfill(status=200, content_type="image/png", body=BLANK_PNG)

        context.route(re.compile(r"^https?://"), offline)
        context.route(
            re.compile(rf"/api/brands/integration/(?!{DOMAIN}/)[^/]+/"), brand_icon
        )
        context.on("console", browser_log.on_console)
        context.on("weberror", browser_log.on_web_error)
        try:
            yield context
        finally:
            (artifacts / "browser-console.log").write_text(
                "\n".join(browser_log.messages) + "\n", encoding="utf-8"
            )
            context.close()
            browser.close()


@pytest.fixture(scope="session")
def page(
    browser_context: BrowserContext, demo: Demo, shots: Screenshots
) -> Iterator[Page]:
    """A page logged in as the demo's owner."""
    page = browser_context.new_page()
    page.goto(demo.ha_url)
    page.locator("input[name='username']").fill(USERNAME)
    page.locator("input[name='password']").fill(PASSWORD)
    shots.take(page, "login")
    page.get_by_role("button", name="Log in").click()
    # The default dashboard: the overview at /home (since 2026.x).
    page.wait_for_url(f"{demo.ha_url}/home/**")
    expect(page.get_by_text("Demo User")).to_be_visible()
    yield page
    page.close()
