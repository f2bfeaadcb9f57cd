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
from tests.support.loopback import LoopbackServer, Response
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


SCROLL = "[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]"


def problems(page: Any, seen: Visit) -> list[str]:
    """Everything wrong with a loaded page, one line each."""
    found = [] if page.title() else ["the page has no title"]
    found += [f"console: {error}" for error in seen.console_errors]
    found += [f"request failed: {failed}" for failed in seen.failed]
    found += [f"request beyond 127.0.0.1: {url}" for url in seen.outside]
    found += [f"a script ran: {message}" for message in seen.dialogs]
    width, client = page.evaluate(SCROLL)
    if width > client:
        found.append(f"scrolls sideways: {width} px wide in {client}")
    found += [
        f"axe {v['impact']} {v['id']}: {v['help']} {[n['target'] for n in v['nodes']]}"
        for v in axe_violations(page)
        if v["impact"] in BLOCKING
    ]
    return found


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
        found = problems(page, seen)
        assert not found, "\n".join(found)
    finally:
        page.context.close()


def test_every_other_page_of_the_demo_at_phone_width(
    browser: Any, served: dict[str, tuple[LoopbackServer, dict[str, str]]], demo_site: Path
) -> None:
    """The demo's remaining pages (every story's and channel's, and any new kind of page) pass
    the same checks at the narrowest width; redirect pages are left to their own test."""
    server, checked = served["demo"]
    files = site_files(demo_site)
    others = sorted(
        name
        for name, data in files.items()
        if name.endswith(".html")
        and name not in checked.values()
        and b'http-equiv="refresh"' not in data
    )
    assert others  # the demo has more stories and channels than the three pages above
    found = []
    for name in others:
        page, seen = visit(browser, server.url(f"/{name}"), *VIEWS["phone"])
        try:
            found += [f"{name}: {problem}" for problem in problems(page, seen)]
        finally:
            page.context.close()
    assert not found, "\n".join(found)


def test_the_checks_can_fail(browser: Any) -> None:
    """A page that runs a script, logs an error, scrolls sideways, fetches from beyond loopback,
    404s and breaks axe rules (no language, an image without text, faint text) is caught by each
    check."""
    bad = (
        b'<!DOCTYPE html><html><head><meta charset="utf-8"><title>bad</title>'
        b'<link rel="stylesheet" href="http://192.0.2.1/x.css">'
        b'<link rel="stylesheet" href="gone.css">'
        b'</head><body><div style="width:3000px">wide</div><img src="data:,">'
        b'<p style="color: #bbb; background: #fff">faint</p>'
        b'<script>console.error("boom"); alert("ran")</script></body></html>'
    )
    with LoopbackServer(
        {"/bad.html": Response(body=bad, headers={"Content-Type": "text/html"})}
    ) as srv:
        page, seen = visit(browser, srv.url("/bad.html"), 375, 812)
        try:
            found = problems(page, seen)
        finally:
            page.context.close()
    expected = [
        "a script ran: ran",
        "console: boom",
        "request beyond 127.0.0.1: http://192.0.2.1/x.css",
        "request failed: 404 http://127.0.0.1:",
        "scrolls sideways:",
        "axe serious html-has-lang:",
        "axe critical image-alt:",
        "axe serious color-contrast:",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in found), (start, found)


def test_a_merged_storys_page_takes_the_reader_on(
    browser: Any, served: dict[str, tuple[LoopbackServer, dict[str, str]]]
) -> None:
    """The redirect page's meta refresh works in a browser, the page's policy notwithstanding."""
    server, _ = served["chinese"]
    page, seen = visit(browser, server.url("/stories/bridge-old.html"), *VIEWS["phone"])
    try:
        page.wait_for_url(server.url("/stories/bridge.html"), timeout=10_000)
        assert page.locator("h1").inner_text() == "长江大桥维修两周后重新通车"
        # the refresh leaves before the page's icon has loaded: that load is aborted, not failed
        failed = [f for f in seen.failed if not f.startswith("net::ERR_ABORTED")]
        assert not (seen.console_errors or failed or seen.outside), seen
    finally:
        page.context.close()


def test_search_finds_a_story_by_a_word_of_its_summary(
    browser: Any, served: dict[str, tuple[LoopbackServer, dict[str, str]]], demo_site: Path
) -> None:
    """The search box (Pagefind, served by the site) finds a story by a word that only its
    summary holds, not its headline, and links to its page; the page stays clean meanwhile."""
    server, _ = served["demo"]
    files = site_files(demo_site)
    front = lxml.html.fromstring(files["index.html"])
    stories = front.xpath("//ol[@class='stories']/li")
    target, word = None, None
    for item in stories:
        headline = item.xpath(".//h2")[0].text_content().lower()
        summary = item.xpath(".//p[@class='summary']")[0].text_content()
        others = " ".join(s.text_content().lower() for s in stories if s is not item)
        for candidate in sorted(set(summary.split()), key=len, reverse=True):
            token = candidate.strip(".,;:()“”\"'").lower()
            if token.isalpha() and len(token) > 6 and token not in headline and token not in others:
                target, word = item.xpath(".//h2/a/@href")[0], token
                break
        if word:
            break
    assert target and word, "no story has a word of its own in its summary"
    page, seen = visit(browser, server.url("/index.html"), *VIEWS["desktop"])
    try:
        box = page.locator(".pagefind-ui__search-input")
        box.wait_for(state="visible", timeout=15_000)
        assert box.get_attribute("aria-label")
        box.fill(word)
        link = page.locator(".pagefind-ui__result-link").first
        link.wait_for(timeout=15_000)
        hrefs = page.locator(".pagefind-ui__result-link").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))"
        )
        assert any(href.endswith(target.split("/")[-1]) for href in hrefs), (word, target, hrefs)
        found = problems(page, seen)
        assert not found, "\n".join(found)
    finally:
        page.context.close()
