"""Feed parsing: speed of parse_feed against feedparser, agreement on every entry, and a
time-bounded sweep of every feed file in the shared data.

Run from the repository root: ``.venv/bin/python -m benchmarks parse``.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import feedparser

from aggregator.errors import NotAFeedError
from aggregator.parse import parse_feed
from aggregator.parse.fast import parse_fast
from aggregator.parse.reference import parse_with_feedparser
from aggregator.parse.worker import parse_feed_bounded, shutdown_workers
from aggregator.records import FeedItem, ParsedFeed

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
FEEDS = SHARED / "feeds"
BENCHMARK_DATA = FEEDS / "fastfeedparser" / "benchmark_data"
NOW = datetime(2026, 3, 1, tzinfo=UTC)  # the benchmark feeds were captured in February 2026
FIELDS = ("title", "link", "published")
ALL_FIELDS = ("title", "link", "guid", "published", "author", "language", "image", "text")


@dataclass
class Agreement:
    """How often the fast path gives feedparser's title, link and date, entry by entry."""

    files: int = 0
    fast_files: int = 0  # files the fast path read (the rest went to feedparser)
    entries: int = 0
    differing: int = 0  # title, link or published differ
    differing_fields: dict[str, int] = field(default_factory=dict)  # every field, text included
    examples: list[str] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * (self.entries - self.differing) / self.entries if self.entries else 100.0


def agreement(paths: Iterable[Path], *, url: str = "") -> Agreement:
    """Compare the fast path with the feedparser path on every entry it reads.

    Documents the fast path declines go to feedparser itself, so their entries agree by
    construction; they are left out of the count, which makes the figure the stricter one.
    """
    result = Agreement()
    for path in paths:
        body = path.read_bytes()
        result.files += 1
        try:
            fast = parse_fast(body, url=url, content_type="", max_items=500, now=NOW)
        except NotAFeedError:
            fast = None
        if fast is None:
            continue
        result.fast_files += 1
        reference = _or_none(parse_with_feedparser, body, url=url)
        ours = fast.items
        theirs = reference.items if reference else ()
        for index in range(max(len(ours), len(theirs))):
            result.entries += 1
            a = ours[index] if index < len(ours) else None
            b = theirs[index] if index < len(theirs) else None
            for name in ALL_FIELDS:
                if a and b and _field(a, name) != _field(b, name):
                    result.differing_fields[name] = result.differing_fields.get(name, 0) + 1
            if a is None or b is None or _key(a) != _key(b):
                result.differing += 1
                if len(result.examples) < 10:
                    where = f"{path.name}[{index}]"
                    result.examples.append(f"{where}: ours {_show(a)} feedparser {_show(b)}")
    return result


def _or_none(parse: Callable[..., ParsedFeed], body: bytes, *, url: str = "") -> ParsedFeed | None:
    """``parse(body)`` as of NOW, or None for a document that is not a feed."""
    try:
        return parse(body, url=url, now=NOW)
    except NotAFeedError:
        return None


def _key(item: FeedItem) -> tuple[object, ...]:
    return tuple(getattr(item, name) for name in FIELDS)


def _field(item: FeedItem, name: str) -> object:
    return item.text if name == "text" else getattr(item, name)


def _show(item: FeedItem | None) -> str:
    return "<none>" if item is None else repr(_key(item))


def run() -> None:
    if not BENCHMARK_DATA.is_dir():
        print(f"parse: skipped, {BENCHMARK_DATA.resolve()} not found")
        return
    speed()
    sweep()


def speed(rounds: int = 3) -> None:
    """Seconds for the 200 real feeds, best of ``rounds``: feedparser alone, parse_feed."""
    paths = sorted(BENCHMARK_DATA.iterdir())
    bodies = [p.read_bytes() for p in paths]

    def feedparser_alone() -> None:
        for body in bodies:
            feedparser.parse(io.BytesIO(body))

    def old_parse_feed() -> None:
        for body in bodies:
            _or_none(parse_with_feedparser, body)

    def ours() -> None:
        for body in bodies:
            _or_none(parse_feed, body)

    def ours_with_text() -> None:
        for body in bodies:
            parsed = _or_none(parse_feed, body)
            for item in parsed.items if parsed else ():
                _ = item.text

    alone = _best(feedparser_alone, rounds)
    reference = _best(old_parse_feed, 1)
    fast = _best(ours, rounds)
    with_text = _best(ours_with_text, rounds)
    parsed_feeds = [_or_none(parse_feed, body) for body in bodies]
    entries = sum(len(feed.items) for feed in parsed_feeds if feed)
    print(f"speed: {len(bodies)} files, {entries} entries; best of {rounds} runs")
    print(f"speed: feedparser.parse alone (defaults) {alone:.2f} s")
    print(f"speed: feedparser + our normalisation (the old parse_feed, one run) {reference:.2f} s")
    print(f"speed: parse_feed (fast path + fallback) {fast:.2f} s")
    print(
        f"speed: ratio {alone / fast:.1f}x against feedparser alone, "
        f"{reference / fast:.1f}x against the old parse_feed"
    )
    # A crawl turns summaries into text only for items it has not stored yet (FeedItem.text);
    # a first crawl of every feed pays this whole figure, later crawls a small part of it.
    print(
        f"speed: parse_feed + every summary as plain text {with_text:.2f} s "
        f"({alone / with_text:.1f}x against feedparser alone)"
    )
    result = agreement(paths)
    print(
        f"agreement: {result.fast_files} of {result.files} files on the fast path; "
        f"title+link+published equal on {result.percent:.3f}% of the {result.entries} entries "
        "it read "
        f"({result.differing} differ)"
    )
    others = ", ".join(f"{k} {v}" for k, v in sorted(result.differing_fields.items())) or "none"
    print(f"agreement: entries where a field differs, by field: {others}")
    for example in result.examples[:5]:
        print(f"  {example}")


def _best(run: Callable[[], None], rounds: int) -> float:
    """The shortest of ``rounds`` timed runs (the least disturbed by the rest of the machine)."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def sweep(timeout: float = 10.0) -> None:
    """Every MANIFEST file through parse_feed_bounded: outcomes and the slowest files."""
    rows = manifest_rows()
    outcomes = {"parsed": 0, "not a feed": 0, "timed out": 0}
    slowest: list[tuple[float, str]] = []
    started = time.perf_counter()
    try:
        for row in rows:
            body = (FEEDS / row).read_bytes()
            one = time.perf_counter()
            try:
                parse_feed_bounded(body, url="https://example.org/feed", timeout=timeout)
                outcomes["parsed"] += 1
            except NotAFeedError as exc:
                key = "timed out" if "longer than" in str(exc) else "not a feed"
                outcomes[key] += 1
            slowest.append((time.perf_counter() - one, row))
    finally:
        shutdown_workers()
    elapsed = time.perf_counter() - started
    print(f"sweep: {len(rows)} MANIFEST files in {elapsed:.1f} s: {outcomes}")
    for seconds, row in sorted(slowest, reverse=True)[:3]:
        print(f"  slowest: {seconds:.2f} s {row}")


def manifest_rows() -> list[str]:
    """Paths (relative to feeds/) of every file in MANIFEST.tsv."""
    with (FEEDS / "MANIFEST.tsv").open(newline="", encoding="utf-8") as handle:
        return [row["path"] for row in csv.DictReader(handle, delimiter="\t")]
