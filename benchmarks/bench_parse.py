"""Feed parsing: speed of parse_feed against feedparser, agreement on every entry, and a
time-bounded sweep of every feed file in the shared data.

Run from the repository root: ``.venv/bin/python -m benchmarks parse``.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from pathlib import Path

import feedparser

from aggregator.errors import NotAFeedError
from aggregator.parse import parse_feed
from aggregator.parse.reference import parse_with_feedparser
from aggregator.parse.worker import parse_feed_bounded, shutdown_workers
from tests.support.parse_agreement import agreement, parse_or_none

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
FEEDS = SHARED / "feeds"
BENCHMARK_DATA = FEEDS / "fastfeedparser" / "benchmark_data"


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
            parse_or_none(parse_with_feedparser, body)

    def ours() -> None:
        for body in bodies:
            parse_or_none(parse_feed, body)

    def ours_with_text() -> None:
        for body in bodies:
            parsed = parse_or_none(parse_feed, body)
            for item in parsed.items if parsed else ():
                _ = item.text

    alone = _best(feedparser_alone, rounds)
    reference = _best(old_parse_feed, 1)
    fast = _best(ours, rounds)
    with_text = _best(ours_with_text, rounds)
    parsed_feeds = [parse_or_none(parse_feed, body) for body in bodies]
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
