"""One-off fetches for the editor's commands: probing a feed to see what it holds, finding the
feed a home page advertises, and extracting one article page (``aggregator extract``).

Both fetch through ``crawl.fetch.Fetcher`` (so ``allow_private_networks`` and every other fetch
limit apply) and parse with ``parse_feed``, as a crawl would.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import urljoin

from aggregator.crawl.fetch import FEED_ACCEPT, PAGE_ACCEPT, Fetcher
from aggregator.errors import NotAFeedError, UserError
from aggregator.extract import extract_page
from aggregator.parse import parse_feed
from aggregator.records import ExtractedPage, FetchStatus, ParsedFeed
from aggregator.settings import FetchSettings
from aggregator.urls import absolute_url, http_url

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")
COMMON_FEED_PATHS = ("/feed", "/rss.xml", "/atom.xml", "/feed.xml")

# -- probing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """What one fetch of a feed showed."""

    url: str  # the feed URL probed
    ok: bool
    status: str  # "200", "404", or the fetch error in words
    format: str = ""  # "rss20", "atom10", "json11"...
    items: int = 0
    newest: datetime | None = None  # the newest item's date, if any item has one
    full_text: bool = False  # most items carry the article's text, not a teaser
    title: str = ""  # the feed's own title
    error: str = ""


_ROOT = re.compile(rb"<(rss|feed|rdf:RDF)[\s>]", re.I)


def sniff_format(body: bytes) -> str:
    """ "rss", "atom" or "rdf" from the root element, for parsers that do not say."""
    found = _ROOT.search(body[:4096])
    name = found.group(1).decode().lower() if found else ""
    return {"feed": "atom", "rdf:rdf": "rdf"}.get(name, name)


def judge(url: str, http_status: int | None, feed: ParsedFeed, short_chars: int) -> Probe:
    """A parsed feed -> Probe (pure)."""
    dates = [item.published for item in feed.items if item.published]
    long_items = sum(1 for item in feed.items if len(item.text) >= short_chars)
    return Probe(
        url=url,
        ok=True,
        status=str(http_status or "ok"),
        format=feed.format,
        items=len(feed.items),
        newest=max(dates) if dates else None,
        full_text=bool(feed.items) and long_items * 2 >= len(feed.items),
        title=feed.title,
    )


async def _probe(fetcher: Fetcher, url: str, settings: FetchSettings) -> Probe:
    result = await fetcher.get(url, accept=FEED_ACCEPT)
    if result.status is not FetchStatus.OK:
        status = str(result.http_status or "error")
        return Probe(url, ok=False, status=status, error=result.error or result.status.value)
    try:
        feed = parse_feed(
            result.body,
            url=result.final_url or url,
            content_type=result.content_type,
            max_items=settings.max_items_per_feed,
        )
    except NotAFeedError as exc:
        return Probe(url, ok=False, status=str(result.http_status or ""), error=str(exc))
    return _judged(url, result.http_status, feed, result.body, settings)


def _judged(
    url: str, status: int | None, feed: ParsedFeed, body: bytes, settings: FetchSettings
) -> Probe:
    probe = judge(url, status, feed, settings.short_text_chars)
    return probe if probe.format else replace(probe, format=sniff_format(body))


def probe_all(urls: Sequence[str], settings: FetchSettings) -> list[Probe]:
    """Fetch each URL once, concurrently; one Probe per URL, in order."""

    async def run() -> list[Probe]:
        async with Fetcher(settings) as fetcher:
            return list(await asyncio.gather(*(_probe(fetcher, u, settings) for u in urls)))

    return asyncio.run(run())


# -- discovery -----------------------------------------------------------------------------------


class _FeedLinks(HTMLParser):
    """<link rel="alternate" type="application/rss+xml|atom+xml|feed+json" href=...>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "link":
            return
        values = {k.lower(): (v or "").strip() for k, v in attrs}
        rels = values.get("rel", "").lower().split()
        kind = values.get("type", "").lower().split(";")[0].strip()
        if "alternate" in rels and kind in FEED_TYPES and values.get("href"):
            self.hrefs.append(values["href"])


def feed_links(html: bytes, base_url: str) -> list[str]:
    """Absolute URLs of the feeds a page advertises, in page order, without repeats."""
    parser = _FeedLinks()
    parser.feed(html[:2_000_000].decode("utf-8", "replace"))
    parser.close()
    links: list[str] = []
    for href in parser.hrefs:
        url = absolute_url(href, base_url)
        if url and url not in links:
            links.append(url)
    return links


@dataclass(frozen=True)
class Discovered:
    url: str  # the feed URL to save
    probe: Probe


def discover(url: str, settings: FetchSettings) -> Discovered:
    """``url`` if it is a feed; else the feed its page links to; else a common feed path."""

    async def run() -> Discovered:
        tried: list[str] = []
        async with Fetcher(settings) as fetcher:
            result = await fetcher.get(url, accept=FEED_ACCEPT)
            if result.status is not FetchStatus.OK:
                raise UserError(f"{url}: {result.error or result.status.value}")
            base = result.final_url or url
            try:
                feed = parse_feed(result.body, url=base, content_type=result.content_type)
                return Discovered(
                    url, judge(url, result.http_status, feed, settings.short_text_chars)
                )
            except NotAFeedError as exc:
                tried.append(f"{url} ({exc})")
            advertised = feed_links(result.body, base)
            candidates = advertised or [urljoin(base, path) for path in COMMON_FEED_PATHS]
            for candidate in candidates:
                probe = await _probe(fetcher, candidate, settings)
                if probe.ok:
                    return Discovered(candidate, probe)
                tried.append(f"{candidate} ({probe.error})")
        raise UserError(f"no feed found at {url}; tried: " + "; ".join(tried))

    return asyncio.run(run())


# -- one article page ----------------------------------------------------------------------------


def extract_target(target: str, settings: FetchSettings, *, base_url: str = "") -> ExtractedPage:
    """The article in a saved page (a file path) or at an http(s) URL, fetched as a crawl would.

    ``base_url`` resolves a file's relative links; a URL is its own base. Raises UserError naming
    the target when it cannot be read or fetched, or holds no article text.
    """
    if http_url(target):
        html, base = _download(target, settings), target
    else:
        try:
            with open(target, "rb") as handle:
                html = handle.read()
        except OSError as exc:
            raise UserError(f"{target}: cannot read: {exc.strerror}") from exc
        base = base_url
    page = extract_page(html, base)
    if page is None:
        raise UserError(f"{target}: no article text found")
    return page


def _download(url: str, settings: FetchSettings) -> bytes:
    async def get() -> bytes:
        async with Fetcher(settings) as fetcher:
            result = await fetcher.get(url, accept=PAGE_ACCEPT)
        if result.status is not FetchStatus.OK:
            raise UserError(f"{url}: {result.error or result.status.value}")
        return result.body

    return asyncio.run(get())
