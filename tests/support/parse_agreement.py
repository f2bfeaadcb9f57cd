"""The fast parsing path against the feedparser path, entry by entry, on files of feeds.

tests/test_parse_fast.py requires the agreement on 200 real feeds; benchmarks/bench_parse.py
prints it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aggregator.errors import NotAFeedError
from aggregator.parse.fast import parse_fast
from aggregator.parse.reference import parse_with_feedparser
from aggregator.records import FeedItem, ParsedFeed

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
        reference = parse_or_none(parse_with_feedparser, body, url=url)
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


def parse_or_none(
    parse: Callable[..., ParsedFeed], body: bytes, *, url: str = ""
) -> ParsedFeed | None:
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
