"""The site with an archive: 40 stored days of 25 stories each (1,000 stories, 3,000 articles)
rendered into pages, day pages and feeds, then published with the Pagefind index built.

Run from the repository root: ``.venv/bin/python -m benchmarks archive``.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.records import Article, Edition, EditionStory, Story, Summary, SummarySentence
from aggregator.render.pages import build_site, render_site
from aggregator.render.search import search_binary
from aggregator.settings import Settings

NOW = datetime(2026, 12, 2, 18, tzinfo=UTC)
DAYS, PER_DAY, OUTLETS = 40, 25, 3
CATEGORIES = ("world", "technology", "science")


def archive() -> tuple[dict[str, Article], list[Edition]]:
    articles: dict[str, Article] = {}
    editions = []
    for d in range(DAYS):
        day = NOW - timedelta(days=DAYS - d)
        entries = []
        for rank in range(PER_DAY):
            sid, category = f"s{d}-{rank}", CATEGORIES[rank % len(CATEGORIES)]
            members = [
                Article(
                    id=f"{sid}-{k}",
                    url=f"https://outlet{k}.example/{sid}",
                    title=f"Harbour report {sid} as outlet {k} told it",
                    source_id=f"outlet{k}",
                    source_name=f"Outlet {k}",
                    published=day - timedelta(hours=k),
                    category=category,
                )
                for k in range(OUTLETS)
            ]
            articles.update((a.id, a) for a in members)
            ids = tuple(a.id for a in members)
            story = Story(sid, ids, f"Story {sid}", day - timedelta(hours=3), day, category)
            sentences = (
                SummarySentence(f"The council of {sid} voted on the harbour wall.", ids[:2]),
                SummarySentence("Repairs will take 42 days.", ids[2:]),
            )
            entries.append(EditionStory(story, Summary(sid, f"Headline {sid}", sentences, "llm")))
        editions.append(Edition(day.date(), day, tuple(entries)))
    return articles, editions


def run() -> None:
    articles, editions = archive()
    settings = Settings(site_url="https://news.example.org/")
    started = time.perf_counter()
    files = build_site([], {}, articles, settings, NOW, editions=editions)
    built = time.perf_counter() - started
    size = sum(len(data) for data in files.values()) / 1e6
    print(
        f"{DAYS * PER_DAY:,} archived stories in {DAYS} days: {len(files):,} files "
        f"({size:.1f} MB) built in {built:.2f} s"
    )
    binary = search_binary()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        site = render_site([], {}, articles, settings, Path(tmp) / "site", NOW, editions=editions)
        published = time.perf_counter() - started
        index = sum(p.stat().st_size for p in (site / "pagefind").rglob("*") if p.is_file())
    search = f"with the Pagefind index ({index / 1e6:.1f} MB)" if binary else "without search"
    print(f"built and published {search} in {published:.2f} s")
