"""Helpers of the browser test: console log, screenshots, REST cross-checks, tiles."""

from __future__ import annotations

from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import re
import shutil
from typing import Any
from urllib.parse import urlsplit
import urllib.request

from playwright.sync_api import (
    ConsoleMessage,
    Locator,
    Page,
    TimeoutError as PlaywrightTimeoutError,
    WebError,
)

from demo.launch import Demo

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts" / "e2e"
DOCS_IMAGES = REPO / "docs" / "images"
PROFILE = Path(__file__).with_name("sim_profile.json")

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
# Headless without a sandbox (root in CI) and without any of Chromium's own
# network traffic: this machine reaches no host but its package registries.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

# A transparent 1x1 PNG: the stand-in for brands.home-assistant.io (see below).
BLANK_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine."""
    return (urlsplit(url).hostname or "") in LOOPBACK


@dataclass(slots=True)
class BrowserProblem:
    """A console error or an uncaught exception in a page."""

    kind: str  # "console" or "exception"
    text: str
    url: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.text} ({self.url})"


@dataclass(frozen=True, slots=True)
class AllowedProblem:
    """A console error that is allowed: its text and where it comes from."""

    reason: str
    text: re.Pattern[str]
    loopback: bool  # from Home Assistant (True) or from other hosts (False)
    path: re.Pattern[str] = re.compile("")

    def explains(self, problem: BrowserProblem) -> bool:
        return (
            problem.kind == "console"
            and is_loopback(problem.url) == self.loopback
            and bool(self.path.match(urlsplit(problem.url).path))
            and bool(self.text.search(problem.text))
        )


# What the browser reports that is neither the integration's fault nor a
# sign of a broken page, each with the reason. Everything else fails the test.
ALLOWED_PROBLEMS: tuple[AllowedProblem, ...] = (
    AllowedProblem(
        # The machine is offline: the frontend's requests to other hosts are
        # aborted by the test; the other integrations' brand images are
        # answered with a blank image, see `browser_context`.
        "offline: resources from other hosts",
        re.compile(r"^Failed to load resource: net::ERR_(FAILED|NAME_NOT_RESOLVED)"),
        loopback=False,
    ),
    AllowedProblem(
        # The map card's tiles come through Home Assistant's map_tiles proxy,
        # which answers 502 when it cannot reach OpenStreetMap (offline).
        "offline: map tiles through Home Assistant's proxy",
        re.compile(r"^Failed to load resource: .* 502 \(Bad Gateway\)"),
        loopback=True,
        path=re.compile(r"^/api/map_tiles/"),
    ),
)


@dataclass  # no slots: Playwright stores a wrapper on its handlers' instance
class BrowserLog:
    """Everything the pages printed to the console, and their uncaught errors."""

    messages: list[str] = field(default_factory=list)
    problems: list[BrowserProblem] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        url = str(message.location.get("url", ""))
        self.messages.append(f"{message.type}: {message.text} ({url})")
        if message.type == "error":
            self.problems.append(BrowserProblem("console", message.text, url))

    def on_web_error(self, error: WebError) -> None:
        page_url = error.page.url if error.page else ""
        text = f"{error.error.name}: {error.error.message}\n{error.error.stack}"
        self.messages.append(f"exception: {text} ({page_url})")
        self.problems.append(BrowserProblem("exception", text, page_url))

    def unexpected(self) -> list[BrowserProblem]:
        """Problems that no entry of ALLOWED_PROBLEMS explains."""
        return [p for p in self.problems if not _allowed(p)]


def _allowed(problem: BrowserProblem) -> bool:
    return any(allowed.explains(problem) for allowed in ALLOWED_PROBLEMS)


class Screenshots:
    """Saves screenshots to the artifacts; the README's ones also to docs/images."""

    def __init__(self, directory: Path, update_docs: bool) -> None:
        self.directory = directory
        self.update_docs = update_docs
        self.saved: list[Path] = []
        self.retried: list[str] = []

    def take(
        self, page: Page, name: str, *, height: int | None = None, docs: bool = False
    ) -> Path:
        """Save a screenshot; ``height``: of a taller window (-1: the whole page).

        Home Assistant's sidebar is as tall as the window, so a long page is
        shot in a window of its height rather than as a "full page" picture.

        The map card draws with WebGL, which this headless browser renders in
        software; a capture of a tall window once waited over 30 s for its
        frame in CI. A picture is evidence, not an assertion: a capture that
        times out is retried once in the normal window, and the retry is
        written to the screenshot log.
        """
        path = self.directory / f"{len(self.saved) + 1:02d}-{name}.png"
        if height is not None:
            if height < 0:
                height = int(page.evaluate("document.documentElement.scrollHeight"))
            page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        # Let animations (dialogs, ripples) and a resized layout settle.
        page.wait_for_timeout(800)
        try:
            page.screenshot(path=path, animations="disabled")
        except PlaywrightTimeoutError as err:
            self.retried.append(f"{path.name}: {err.message.splitlines()[0]}")
            page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
            page.wait_for_timeout(800)
            page.screenshot(path=path, animations="disabled")
        if height is not None:
            page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
        self.saved.append(path)
        if docs and self.update_docs:
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_IMAGES / f"{name}.png")
        return path


class HomeAssistantApi:
    """Cross-checks through the REST API, as the demo's owner."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.demo.ha_url}{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.demo.token}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def state(self, entity_id: str) -> str:
        return str(self.request("GET", f"/api/states/{entity_id}")["state"])

    def sim_state(self) -> dict[str, Any]:
        url = f"{self.demo.sim_url}/_sim/state?requests=100"
        with urllib.request.urlopen(url, timeout=30) as resp:
            state: dict[str, Any] = json.loads(resp.read())
        return state


def tile(page: Page, name: str) -> Locator:
    """The tile card whose name is exactly ``name``."""
    primary = page.locator("ha-tile-info [slot=primary]").filter(
        has_text=re.compile(rf"^\s*{re.escape(name)}\s*$")
    )
    return page.locator("hui-tile-card").filter(has=primary)


def tile_value(page: Page, name: str) -> Locator:
    """The state line of the tile card named ``name``."""
    return tile(page, name).locator("ha-tile-info [slot=secondary]")
