"""sources.yaml at scale: load and validate 10,000 real feeds (Kagi Kite's list, topped up).

Run from the repository root: ``.venv/bin/python -m benchmarks sources``.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from aggregator.sources.edit import NewSource, SourcesDocument
from aggregator.sources.load import load_config, url_key

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
LISTS = SHARED / "source_lists"
_XML_URL = re.compile(r'xmlUrl="([^"]+)"')


def real_feed_urls(lists: Path = LISTS) -> list[tuple[str, str, str]]:
    """(url, category, language) of every distinct feed: Kite's 9,897 URLs, then awesome-rss."""
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


def big_sources_yaml(count: int = 10_000, lists: Path = LISTS) -> str:
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


def run() -> None:
    if not (LISTS / "kagi_kite" / "kite_feeds.json").is_file():
        print(f"skipped: {LISTS.resolve()} not found (fresh clone without ../shared/data)")
        return
    text = big_sources_yaml()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sources.yaml"
        path.write_text(text, encoding="utf-8")
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            config = load_config(path, env={})
            timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        doc = SourcesDocument(path)
        doc.add(NewSource(url="https://bench.example/feed.xml", name="Bench"))
        doc.save()
        add_time = time.perf_counter() - started
    lines = text.count("\n")
    print(
        f"load+validate {len(config.sources):,} sources ({lines:,} lines): "
        f"best {min(timings):.2f} s, worst {max(timings):.2f} s of 3 (target < 2 s)"
    )
    print(f"add one source to that file (validate, append, re-validate, write): {add_time:.2f} s")
