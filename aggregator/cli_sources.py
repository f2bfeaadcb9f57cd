"""`aggregator sources ...`: check (and probe) sources.yaml, add a feed, OPML import and export.

Probing and feed discovery live here too: they fetch through ``aggregator.fetch.Fetcher`` (so
``allow_private_networks`` and every other fetch limit apply) and parse with ``parse_feed``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

from aggregator.cli import EXIT_OK, EXIT_PARTIAL, CommandError, _add, _config
from aggregator.config import DEFAULT_CONFIG, FetchSettings, Settings, apply_environment
from aggregator.fetch import FEED_ACCEPT, Fetcher
from aggregator.opml import ExportFeed, OpmlError, read_opml, write_opml
from aggregator.parse import NotAFeedError, parse_feed
from aggregator.records import FetchStatus, ParsedFeed
from aggregator.sources import Config, Source, load_config
from aggregator.sources_edit import DuplicateSourceError, NewSource, SourcesDocument, add_many

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
        url = urljoin(base_url, href)
        if url.startswith(("http://", "https://")) and url not in links:
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
                raise CommandError(f"{url}: {result.error or result.status.value}")
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
        raise CommandError(f"no feed found at {url}; tried: " + "; ".join(tried))

    return asyncio.run(run())


# -- commands -------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    config = _config(args, required=True)
    enabled = config.enabled_sources
    languages = sorted({s.language for s in enabled if s.language})
    categories = sorted({s.category for s in enabled})
    print(
        f"{config.path}: OK, {len(config.sources)} sources ({len(enabled)} enabled) in "
        f"{len(categories)} categories, languages: {', '.join(languages) or '-'}"
    )
    if not args.probe:
        return EXIT_OK
    probes = probe_all([s.url for s in enabled], config.settings.fetch)
    _print_probes(enabled, probes)
    failed = sum(1 for p in probes if not p.ok)
    print(f"probe: {len(probes)} sources, {len(probes) - failed} OK, {failed} failed")
    return EXIT_PARTIAL if failed else EXIT_OK


def _print_probes(sources: Sequence[Source], probes: Sequence[Probe]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    for column in ("source", "status", "format", "items", "newest item", "full text", "problem"):
        table.add_column(column, overflow="fold")
    for source, probe in zip(sources, probes, strict=True):
        newest = probe.newest.strftime("%Y-%m-%d %H:%M") if probe.newest else "-"
        full = ("yes" if probe.full_text else "teaser") if probe.ok and probe.items else "-"
        table.add_row(
            source.id,
            probe.status if probe.ok else f"[red]{probe.status}[/red]",
            probe.format or "-",
            str(probe.items),
            newest,
            full,
            probe.error,
        )
    width = None if sys.stdout.isatty() else 160
    Console(width=width, soft_wrap=False, highlight=False).print(table)


def _config_path(args: argparse.Namespace) -> Path:
    import os

    return Path(args.config or os.environ.get("AGGREGATOR_CONFIG") or DEFAULT_CONFIG)


def _fetch_settings(path: Path) -> FetchSettings:
    """The file's fetch settings (environment applied); the defaults for a file not made yet."""
    if path.exists():
        return load_config(path).settings.fetch
    return apply_environment(Settings()).fetch


def cmd_add(args: argparse.Namespace) -> int:
    path = _config_path(args)
    settings = _fetch_settings(path)  # also validates the file before any network work
    doc = SourcesDocument(path)
    found = doc.existing(args.url)
    if found is not None:
        raise CommandError(f"{args.url} is already in {path} as '{found}'")
    discovered = discover(args.url, settings)
    probe = discovered.probe
    new = NewSource(
        url=discovered.url,
        name=args.name or probe.title or "",
        id=args.id or "",
        category=args.category or "",
    )
    try:
        new_id = doc.add(new)
    except DuplicateSourceError as exc:
        raise CommandError(f"{exc.url} is already in {path} as '{exc.existing}'") from exc
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    doc.save()
    print(
        f"added '{new_id}' ({discovered.url}): {probe.format or 'feed'}, {probe.items} items, "
        f"{'full text' if probe.full_text else 'teasers'} -> {path}"
    )
    return EXIT_OK


def cmd_import_opml(args: argparse.Namespace) -> int:
    try:
        feeds = read_opml(Path(args.file).read_bytes())
    except OSError as exc:
        raise CommandError(f"{args.file}: cannot read: {exc.strerror}") from exc
    except OpmlError as exc:
        raise CommandError(f"{args.file}: {exc}") from exc
    path = _config_path(args)
    doc = SourcesDocument(path)
    new = [
        NewSource(
            url=f.url,
            name=f.title,
            category=args.category or f.category,
            language=f.language,
        )
        for f in feeds
        if f.url.startswith(("http://", "https://"))
    ]
    unusable = len(feeds) - len(new)
    added, skipped = add_many(doc, new)
    if added:
        doc.save()
    for url, reason in skipped:
        print(f"  skipped {url}: {reason}", file=sys.stderr)
    print(
        f"{len(added)} sources added to {path}, {len(skipped)} skipped "
        f"(already listed or invalid), {unusable} outlines without an http(s) feed URL"
    )
    return EXIT_OK


def cmd_export_opml(args: argparse.Namespace) -> int:
    config: Config = _config(args, required=True)
    feeds = (
        ExportFeed(url=s.url, name=s.name, category=s.category, language=s.language)
        for s in config.sources
    )
    data = write_opml(feeds, title=config.settings.title)
    if args.output in (None, "-"):
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        from aggregator.sources_edit import write_atomically

        write_atomically(Path(args.output), data.decode("utf-8"))
        print(f"{len(config.sources)} sources written to {args.output}", file=sys.stderr)
    return EXIT_OK


# -- parser ---------------------------------------------------------------------------------------


def add_sources_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """The ``sources`` command and its actions."""
    sources = sub.add_parser(
        "sources",
        help="Work with sources.yaml: check, probe, add a feed, import or export OPML.",
        description="Work with sources.yaml: check, probe, add a feed, import or export OPML.",
        epilog="Example:\n  aggregator sources check --probe --config sources.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = sources.add_subparsers(dest="sources_command", metavar="ACTION", required=True)
    p = _add(
        actions,
        "check",
        cmd_check,
        "Validate sources.yaml (errors name the file, line and field); --probe fetches each "
        "enabled source once and shows status, format, items, newest date and full text.",
        "aggregator sources check --config sources.yaml\n"
        "aggregator sources check --probe   # exit 1 when a source fails",
        [common],
    )
    p.add_argument("--probe", action="store_true", help="fetch every enabled source once")
    p = _add(
        actions,
        "add",
        cmd_add,
        "Add a feed, given its URL or its site's home page (the feed is discovered), to "
        "sources.yaml, keeping the file's comments and layout.",
        "aggregator sources add https://www.theguardian.com/world --category world",
        [common],
    )
    p.add_argument("url", metavar="URL", help="a feed URL or a site's home page")
    p.add_argument("--id", metavar="ID", help="the source id (default: from the feed's title)")
    p.add_argument("--name", metavar="NAME", help="display name (default: the feed's title)")
    p.add_argument("--category", metavar="C", help="category (default: general)")
    p = _add(
        actions,
        "import-opml",
        cmd_import_opml,
        "Add the feeds of an OPML file to sources.yaml; feeds already listed are skipped.",
        "aggregator sources import-opml subscriptions.opml --category tech",
        [common],
    )
    p.add_argument("file", metavar="FILE", help="an OPML 1.0/2.0 file")
    p.add_argument("--category", metavar="C", help="category for every imported feed")
    p = _add(
        actions,
        "export-opml",
        cmd_export_opml,
        "Write the sources as OPML 2.0 (one folder per category), for a feed reader.",
        "aggregator sources export-opml --output sources.opml",
        [common],
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
