"""Big real-world sources.yaml files, from the feed lists in ../shared/data/source_lists.

tests/test_sources.py loads one of 10,000 feeds; benchmarks/bench_sources.py times that load.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

from aggregator.sources.load import url_key

_XML_URL = re.compile(r'xmlUrl="([^"]+)"')


def real_feed_urls(lists: Path) -> list[tuple[str, str, str]]:
    """(url, category, language) of every distinct feed in ``lists`` (../shared/data/source_lists):
    Kite's 9,897 URLs, then awesome-rss."""
    kite = json.loads((lists / "kagi_kite" / "kite_feeds.json").read_text(encoding="utf-8"))
    rows: list[tuple[str, str, str]] = []
    for category, entry in kite.items():
        language = entry.get("source_language") or ""
        rows.extend((url, category, language) for url in entry["feeds"])
    for opml in sorted((lists / "awesome_rss_feeds").rglob("*.opml")):
        text = opml.read_text(encoding="utf-8").replace("&amp;", "&")
        rows.extend((url, opml.stem, "") for url in _XML_URL.findall(text))
    seen: set[str] = set()
    unique: list[tuple[str, str, str]] = []
    for url, category, language in rows:
        key = url_key(url)
        parts = urlsplit(url)
        if key in seen or parts.scheme not in {"http", "https"} or not parts.hostname:
            continue
        seen.add(key)
        unique.append((url, category, language))
    return unique


def big_sources_yaml(lists: Path, count: int = 10_000) -> str:
    """A sources.yaml of ``count`` real feeds, written the way an editor would."""
    feeds = real_feed_urls(lists)[:count]
    if len(feeds) < count:
        raise ValueError(f"only {len(feeds)} distinct feeds in {lists}")
    lines = ["# 10,000 real feeds: Kagi Kite's list, topped up from awesome-rss-feeds", "sources:"]
    for number, (url, category, language) in enumerate(feeds, start=1):
        host = (urlsplit(url).hostname or "feed").removeprefix("www.")
        slug = re.sub(r"[^a-z0-9]+", "-", host.lower()).strip("-")[:40] or "feed"
        lines += [
            f"  - id: {slug}-{number}",
            f"    name: {json.dumps(host)}",
            f"    url: {json.dumps(url)}",
            f"    category: {json.dumps(category[:60])}",
        ]
        if language:
            lines.append(f"    language: {language}")
    return "\n".join(lines) + "\n"
