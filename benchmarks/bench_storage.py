"""Database size: bytes per 10,000 articles with their text and after retention pruned it, on
SQLite (and PostgreSQL when its server answers), and what a month of 1,000 sources takes.

Synthetic articles with realistic sizes: text lengths drawn from a log-normal fitted to the 130
real article pages of Mozilla Readability's test suite (../shared/data/extraction: median 3,460
characters, 10th percentile 820, 90th 22,245; mean about 8,000), words with Zipf frequencies
(so PostgreSQL's compression sees text-like input), news-shaped URLs, titles, authors and images.
Every article is in a story (half alone, the rest in stories of 2 to 12), the largest stories
have summaries in the proportion a digest writes them (the 30 stories of each hourly page, against
the articles 1,000 sources bring in an hour), and 1,000 sources have a fetch state.

Run from the repository root: ``.venv/bin/python -m benchmarks storage``;
``BENCH_STORAGE_ARTICLES`` (default 20000) sets the sample, ``BENCH_STORAGE_PER_DAY`` (default
20) the articles per source and day assumed for the month.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from time import perf_counter

from aggregator.records import (
    Article,
    FetchResult,
    FetchStatus,
    Story,
    Summary,
    SummarySentence,
)
from aggregator.store.storage import Storage
from aggregator.urls import article_id

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TEXT_MEDIAN, TEXT_SIGMA, TEXT_CAP = 3_460, 1.29, 100_000  # characters (records.MAX_SUMMARY_CHARS)
SOURCES = 1_000
DAYS = 30
PG_ADMIN = os.environ.get("AGGREGATOR_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class Measured:
    backend: str
    articles: int
    full: int  # bytes with every text (after VACUUM)
    pruned: int  # bytes once every article was pruned (after VACUUM)
    seconds: float  # to store the sample
    prune_seconds: float  # to prune every article of the sample
    noop_seconds: float  # to prune again, with nothing left to prune


def run() -> None:
    count = int(os.environ.get("BENCH_STORAGE_ARTICLES", "20000"))
    per_day = float(os.environ.get("BENCH_STORAGE_PER_DAY", "20"))
    articles, stories, summaries = sample(count, per_day)
    text_bytes = sum(len(a.text.encode()) for a in articles)
    print(
        f"sample: {count:,} articles ({text_bytes / count:,.0f} bytes of text each on average), "
        f"{len(stories):,} stories, {len(summaries):,} summaries"
    )
    results = [measure_sqlite(articles, stories, summaries)]
    pg = measure_postgres(articles, stories, summaries)
    if pg is None:
        print("postgresql: skipped, no server at", PG_ADMIN)
    else:
        results.append(pg)
    month = SOURCES * per_day * DAYS
    for r in results:
        full, pruned = r.full / r.articles * 10_000, r.pruned / r.articles * 10_000
        print(
            f"{r.backend}: per 10,000 articles {_mb(full)} with their text, {_mb(pruned)} once "
            f"pruned ({r.articles / r.seconds:,.0f} articles/s stored; pruning them all took "
            f"{r.prune_seconds:.2f} s, pruning again with nothing to do "
            f"{r.noop_seconds * 1000:.1f} ms)"
        )
        month_full, month_pruned = full * month / 10_000, pruned * month / 10_000
        print(
            f"{r.backend}: a month of {SOURCES:,} sources at {per_day:g} articles a day "
            f"({month:,.0f} articles): {_gb(month_full)}; with retention_days 30 each further "
            f"month adds {_gb(month_pruned)} (a year: {_gb(month_full + 11 * month_pruned)}, "
            f"without retention {_gb(12 * month_full)})"
        )


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _gb(n: float) -> str:
    return f"{n / 1e9:,.2f} GB"


# -- the sample ------------------------------------------------------------------------------


def _vocabulary(rng: random.Random, size: int = 20_000) -> tuple[list[str], list[float]]:
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [1 / (rank + 2.7) for rank in range(size)]  # Zipf-Mandelbrot, as in prose
    words = {
        "".join(rng.choices(letters, weights=range(26, 0, -1), k=max(1, round(rng.gauss(5, 2)))))
        for _ in range(size * 2)
    }
    return sorted(words, key=lambda w: (len(w), w))[:size], weights


def _corpus(rng: random.Random, chars: int = 3_000_000) -> str:
    words, weights = _vocabulary(rng)
    out: list[str] = []
    total = 0
    while total < chars:
        sentence = rng.choices(words, weights=weights, k=rng.randint(8, 28))
        line = " ".join(sentence).capitalize() + ". "
        out.append(line)
        total += len(line)
    return "".join(out)


def _text(rng: random.Random, corpus: str) -> str:
    length = min(TEXT_CAP, round(rng.lognormvariate(math.log(TEXT_MEDIAN), TEXT_SIGMA)))
    if length >= len(corpus):
        return (corpus * (length // len(corpus) + 1))[:length]
    start = corpus.find(" ", rng.randrange(len(corpus) - length)) + 1
    return corpus[start : start + length].strip()


def sample(
    count: int, per_day: float, seed: int = 15
) -> tuple[list[Article], list[Story], list[Summary]]:
    """Articles spread over the last 60 days, their stories, and summaries of the largest
    stories: 30 an hour for the articles SOURCES sources bring in an hour at ``per_day``."""
    rng = random.Random(seed)
    corpus = _corpus(rng)
    headline_words = corpus.split()[:50_000]
    sections = ("world", "politics", "business", "tech", "science", "sport", "culture", "health")
    articles = []
    for n in range(count):
        source = rng.randrange(SOURCES)
        when = NOW - timedelta(seconds=rng.uniform(0, 60 * 86_400))
        words = rng.choices(headline_words, k=rng.randint(7, 14))
        title = " ".join(words).capitalize()
        slug = "-".join(w.lower() for w in words[:8])
        section = sections[source % len(sections)]
        url = f"https://www.outlet{source:04d}.example/{section}/{when:%Y/%m/%d}/{slug}-{n}"
        articles.append(
            Article(
                id=article_id(url),
                url=url,
                guid=url if n % 2 else f"https://www.outlet{source:04d}.example/?p={n + 100_000}",
                title=title,
                source_id=f"outlet-{source:04d}",
                source_name=f"The Outlet {source:04d} News",
                text=_text(rng, corpus),
                published=when,
                fetched_at=when + timedelta(minutes=rng.uniform(1, 30)),
                language="en",
                author=f"{rng.choice(headline_words).title()} {rng.choice(headline_words).title()}"
                if rng.random() < 0.7
                else "",
                image=f"https://cdn.outlet{source:04d}.example/img/{n}/lead-1200x675.jpg"
                if rng.random() < 0.6
                else "",
                category=section,
            )
        )
    articles.sort(key=lambda a: a.timestamp)
    stories = list(_stories(rng, articles))
    wanted = max(1, round(count * 30 * 24 / (SOURCES * per_day)))
    largest = sorted(stories, key=lambda s: (-len(s.article_ids), s.id))[:wanted]
    return articles, stories, [_summary(rng, story, corpus) for story in largest]


def _stories(rng: random.Random, articles: list[Article]) -> Iterator[Story]:
    start = 0
    while start < len(articles):
        size = 1 if rng.random() < 0.5 else rng.randint(2, 12)
        members = articles[start : start + size]
        start += size
        yield Story(
            id=f"st-{members[0].id[:24]}",
            article_ids=tuple(a.id for a in members),
            title=members[0].title,
            first_seen=members[0].timestamp,
            updated=members[-1].timestamp,
            category=members[0].category,
        )


def _summary(rng: random.Random, story: Story, corpus: str) -> Summary:
    sentences = tuple(
        SummarySentence(_text_of(rng, corpus, 160), story.article_ids[: 1 + i])
        for i in range(rng.randint(2, 4))
    )
    return Summary(
        story_id=story.id,
        headline=story.title,
        sentences=sentences,
        method="llm",
        model="llama3.1",
        input_hash=f"{rng.getrandbits(256):064x}",
        created=story.updated,
    )


def _text_of(rng: random.Random, corpus: str, length: int) -> str:
    start = corpus.find(" ", rng.randrange(len(corpus) - length)) + 1
    return corpus[start : start + length].strip()


# -- measuring -------------------------------------------------------------------------------


def sources(storage: Storage) -> None:
    """The fetch state of SOURCES sources (a constant, measured apart from the articles)."""
    ok = FetchResult(url="", status=FetchStatus.OK, etag='"abc123"', http_status=200)
    for source in range(SOURCES):
        url = f"https://www.outlet{source:04d}.example/feed.xml"
        storage.record_fetch(f"outlet-{source:04d}", ok, NOW, 20, url=url, next_fetch=NOW)


def fill(
    storage: Storage, articles: list[Article], stories: list[Story], summaries: list[Summary]
) -> float:
    """Store the sample; the seconds it took."""
    started = perf_counter()
    for start in range(0, len(articles), 2_000):
        storage.add_articles(articles[start : start + 2_000])
    for start in range(0, len(stories), 1_000):
        storage.save_stories(stories[start : start + 1_000])
    for summary in summaries:
        storage.save_summary(summary)
    return perf_counter() - started


def _prune(storage: Storage) -> tuple[float, float]:
    """Seconds to prune every article, then to find nothing left to prune."""
    started = perf_counter()
    storage.prune(NOW + timedelta(days=1))
    middle = perf_counter()
    assert storage.prune(NOW + timedelta(days=1)) == 0
    return middle - started, perf_counter() - middle


def measure_sqlite(
    articles: list[Article], stories: list[Story], summaries: list[Summary]
) -> Measured:
    with tempfile.TemporaryDirectory() as tmp, Storage(f"sqlite:///{tmp}/bench.db") as storage:
        sources(storage)
        storage.vacuum()
        empty = storage.size()  # the schema and the sources' states
        seconds = fill(storage, articles, stories, summaries)
        storage.vacuum()
        full = storage.size() - empty
        timings = _prune(storage)
        storage.vacuum()
        pruned = storage.size() - empty
    return Measured("sqlite", len(articles), full, pruned, seconds, *timings)


def measure_postgres(
    articles: list[Article], stories: list[Story], summaries: list[Summary]
) -> Measured | None:
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.Error:
        return None
    name = f"aggregator_bench_{random.getrandbits(32):08x}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            with Storage(f"{url}/{name}") as storage:
                sources(storage)
                _vacuum_full(storage)
                empty = storage.size()  # the catalogue, the schema and the sources' states
                seconds = fill(storage, articles, stories, summaries)
                _vacuum_full(storage)
                full = storage.size() - empty
                timings = _prune(storage)
                _vacuum_full(storage)
                pruned = storage.size() - empty
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return Measured("postgresql", len(articles), full, pruned, seconds, *timings)


def _vacuum_full(storage: Storage) -> None:
    """PostgreSQL's VACUUM keeps freed space for reuse inside its files; VACUUM FULL shows the
    size the database settles at once new articles reuse the space pruned text left."""
    with storage.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM FULL ANALYZE")
