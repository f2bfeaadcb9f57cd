"""The site in a real Chromium, served from 127.0.0.1: the front page, a channel's page and a
story's page of the demo site, a Chinese site and a hostile one, at a desktop and a phone width
(and the phone's in the dark theme).

Each page loads with no console error, no failed request and no request beyond 127.0.0.1; it
never scrolls sideways; no script runs; axe-core finds no serious or critical accessibility
violation; and a full-page screenshot is left in test-artifacts/screenshots/ for a person.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import lxml.html
import pytest

from tests.support import site_tools
from tests.support.loopback import LoopbackServer
from tests.support.site_tools import (
    CHROMIUM_ARGS,
    SCREENSHOTS,
    require_chromium,
    serve,
    site_files,
)
from tests.support.sites import chinese_site, hostile_site

# name: (width, height, colour scheme); the phone is also seen at night, in the dark theme
VIEWS = {
    "desktop": (1280, 900, "light"),
    "phone": (375, 812, "light"),
    "phone-dark": (375, 812, "dark"),
}
PAGES = ("front", "channel", "story")
SITES = ("demo", "chinese", "hostile")
BLOCKING = {"serious", "critical"}  # axe impacts that fail the test
# WCAG 2.2 A and AA (target-size included, which axe leaves off unless asked) and axe's best
# practices (landmarks, one h1, heading order)
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


@dataclass
class Visit:
    """What one page load showed."""

    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # requests that failed or got >= 400
    outside: list[str] = field(default_factory=list)  # requests beyond 127.0.0.1, refused
    dialogs: list[str] = field(default_factory=list)  # alert() and the like: script ran


@pytest.fixture(scope="module")
def browser(served: object) -> Iterator[Any]:
    """One Chromium for these tests (the system's: Playwright's download cannot run here).

    Playwright's sync API holds an event loop in this thread while it runs, so no asyncio.run
    (the demo's crawl, other modules' tests) may come while it is open: the sites are built
    first (``served``) and the browser closes with this module."""
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def served(demo_site: Path) -> Iterator[dict[str, tuple[LoopbackServer, dict[str, str]]]]:
    """Each site on its own loopback server, with the paths of its three pages."""
    sites = {"demo": site_files(demo_site), "chinese": chinese_site(), "hostile": hostile_site()}
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # this run's screenshots only
    with contextlib.ExitStack() as stack:
        yield {
            name: (stack.enter_context(serve(files)), _pages(files))
            for name, files in sites.items()
        }


def _pages(files: dict[str, bytes]) -> dict[str, str]:
    """The front page, the first channel's page and the first story's, as the front page links
    them."""
    front = lxml.html.fromstring(files["index.html"])
    channels = front.xpath("//nav[@class='channels']//a/@href")
    stories = front.xpath("//ol[@class='stories']//h2/a/@href")
    channel = next(href for href in channels if href != "index.html")
    return {"front": "index.html", "channel": channel, "story": stories[0]}


def visit(
    browser: Any, url: str, width: int, height: int, scheme: str = "light"
) -> tuple[Any, Visit]:
    """Open url in a fresh context of the given size and colour scheme, recording everything that
    went wrong."""
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    page = context.new_page()
    seen = Visit()

    def route(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            seen.outside.append(route.request.url)
            route.abort()

    def dialog(d: Any) -> None:
        seen.dialogs.append(d.message)
        d.dismiss()

    def response(r: Any) -> None:
        if r.status >= 400:
            seen.failed.append(f"{r.status} {r.url}")

    context.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and seen.console_errors.append(m.text))
    page.on("pageerror", lambda e: seen.console_errors.append(str(e)))
    page.on("requestfailed", lambda r: seen.failed.append(f"{r.failure} {r.url}"))
    page.on("response", response)
    page.on("dialog", dialog)
    page.goto(url, wait_until="load")
    return page, seen


def axe_violations(page: Any) -> list[dict[str, Any]]:
    from axe_playwright_python.sync_playwright import Axe

    result = Axe().run(page, options={"runOnly": AXE_TAGS, "resultTypes": ["violations"]})
    return list(result.response["violations"])


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("which", PAGES)
@pytest.mark.parametrize("site", SITES)
def test_page_in_chromium(
    browser: Any,
    served: dict[str, tuple[LoopbackServer, dict[str, str]]],
    site: str,
    which: str,
    view: str,
) -> None:
    server, pages = served[site]
    page, seen = visit(browser, server.url(f"/{pages[which]}"), *VIEWS[view])
    try:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / f"{site}-{which}-{view}.png"
        page.screenshot(path=str(shot), full_page=True)
        site_tools.taken.append(shot)
        assert page.title(), "the page has no title"
        assert not seen.console_errors, seen.console_errors
        assert not seen.failed, seen.failed
        assert not seen.outside, f"requests beyond 127.0.0.1: {seen.outside}"
        assert not seen.dialogs, f"a script ran: {seen.dialogs}"
        scroll = page.evaluate(
            "[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]"
        )
        assert scroll[0] <= scroll[1], f"scrolls sideways: {scroll[0]} px wide in {scroll[1]}"
        violations = axe_violations(page)
        impacts = sorted(f"{v['impact']}: {v['id']}" for v in violations)
        print(f"axe: {impacts or 'no violations'}")
        blocking = [
            f"{v['impact']} {v['id']}: {v['help']} ({[n['target'] for n in v['nodes']]})"
            for v in violations
            if v["impact"] in BLOCKING
        ]
        assert not blocking, "\n".join(blocking)
    finally:
        page.context.close()


def test_the_checks_can_fail(browser: Any) -> None:
    """A page that scrolls sideways, fetches from beyond loopback, 404s and breaks axe rules
    (no language, an image without text, faint text) is caught by each check."""
    from tests.support.loopback import Response

    bad = (
        b'<!DOCTYPE html><html><head><meta charset="utf-8"><title>bad</title>'
        b'<link rel="stylesheet" href="http://192.0.2.1/x.css">'
        b'<link rel="stylesheet" href="gone.css">'
        b'</head><body><div style="width:3000px">wide</div><img src="data:,">'
        b'<p style="color: #bbb; background: #fff">faint</p></body></html>'
    )
    with LoopbackServer(
        {"/bad.html": Response(body=bad, headers={"Content-Type": "text/html"})}
    ) as srv:
        page, seen = visit(browser, srv.url("/bad.html"), 375, 812)
        try:
            assert seen.outside == ["http://192.0.2.1/x.css"]
            assert any("404" in f and "gone.css" in f for f in seen.failed), seen.failed
            width, client = page.evaluate(
                "[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]"
            )
            assert width > client
            ids = {v["id"] for v in axe_violations(page) if v["impact"] in BLOCKING}
            assert {"html-has-lang", "image-alt", "color-contrast"} <= ids, ids
        finally:
            page.context.close()


def test_a_merged_storys_page_takes_the_reader_on(
    browser: Any, served: dict[str, tuple[LoopbackServer, dict[str, str]]]
) -> None:
    """The redirect page's meta refresh works in a browser, the page's policy notwithstanding."""
    server, _ = served["chinese"]
    page, seen = visit(browser, server.url("/stories/bridge-old.html"), *VIEWS["phone"])
    try:
        page.wait_for_url(server.url("/stories/bridge.html"), timeout=10_000)
        assert page.locator("h1").inner_text() == "长江大桥维修两周后重新通车"
        assert not (seen.console_errors or seen.failed or seen.outside), seen
    finally:
        page.context.close()
