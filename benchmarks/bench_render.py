"""The site: what a reader downloads for the front page (HTML and CSS, there are no images or
scripts), and how long rendering takes, for the demo and for an archive of 1,000 stories.

Run from the repository root: ``.venv/bin/python -m benchmarks render``.
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter

from aggregator.demo.server import DemoServer, demo_config
from aggregator.pipeline import Window, render_stage, run_once
from aggregator.records import Article, Score, Story, Summary, SummarySentence
from aggregator.render.pages import build_site
from aggregator.render.publish import publish
from aggregator.settings import Settings
from aggregator.store.storage import Storage
from aggregator.times import utcnow

ARCHIVE_STORIES = 1_000
ARCHIVE_CATEGORIES = 12
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def run() -> None:
    demo()
    archive()


def demo() -> None:
    """The demo's whole cycle once, then its render stage (query, render, publish), best of 3."""
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp, DemoServer() as srv:
        out = Path(tmp) / "site"
        config = demo_config(srv.base_url, out_dir=out, data_dir=Path(tmp))
        with Storage(config.database_url(None)) as storage:
            started = perf_counter()
            report = run_once(config, storage, out_dir=out)
            cycle = perf_counter() - started
            window = Window.last(utcnow(), config.settings.window_hours)
            categories = [s.category for s in config.sources if s.enabled]

            def render() -> None:
                render_stage(storage, config.settings, window, out, categories=categories)

            seconds = _best(render, 3)
        files = {p.relative_to(out.resolve()).as_posix(): p.read_bytes()
                 for p in out.resolve().rglob("*") if p.is_file()}  # fmt: skip
    stories = report.render.stories
    print(f"demo: whole cycle (crawl, cluster, summarise, render) {cycle:.2f} s")
    print(f"demo: render stage, {stories} stories, {len(files)} files: {seconds * 1000:.0f} ms")
    story = next(name for name in sorted(files) if name.startswith("stories/"))
    for label, names in (
        ("front page", ["index.html", "style.css"]),
        ("story page", [story, "style.css"]),
    ):
        raw = sum(len(files[n]) for n in names)
        packed = sum(len(gzip.compress(files[n], 9)) for n in names)
        parts = " + ".join(f"{n} {len(files[n]):,}" for n in names)
        print(f"demo: {label} weight {raw:,} bytes ({parts}), {packed:,} gzipped; no images")


def archive() -> None:
    """1,000 stories on one page, each with its page, in 12 channels: build, then publish."""
    stories, summaries, articles = _archive()
    settings = Settings(max_stories=ARCHIVE_STORIES, site_url="https://news.example.org/")
    files: dict[str, bytes] = {}

    def build() -> None:
        files.clear()
        files.update(build_site(stories, summaries, articles, settings, NOW))

    build_seconds = _best(build, 3)
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        publish_seconds = _best(lambda: publish(files, Path(tmp) / "site"), 3)
    size = sum(map(len, files.values()))
    print(
        f"archive: {ARCHIVE_STORIES:,} stories ({len(articles):,} articles) -> {len(files):,} "
        f"files, {size / 1e6:.1f} MB: build {build_seconds:.2f} s, publish "
        f"{publish_seconds:.2f} s"
    )
    print(f"archive: front page {len(files['index.html']) / 1e6:.2f} MB of HTML")


def _archive() -> tuple[list[Story], dict[str, Summary], dict[str, Article]]:
    """Stories of 1 to 8 articles with three cited sentences each, newest first."""
    stories: list[Story] = []
    summaries: dict[str, Summary] = {}
    articles: dict[str, Article] = {}
    for n in range(ARCHIVE_STORIES):
        category = f"Channel {n % ARCHIVE_CATEGORIES}"
        members = []
        for k in range(1 + n % 8):
            article = Article(
                id=f"a{n}-{k}",
                url=f"https://outlet{k}.example/2026/11/story-{n}",
                title=f"Report {n} from outlet {k} on the matter at hand, with details",
                source_id=f"outlet{k}",
                source_name=f"Outlet {k}",
                published=NOW - timedelta(hours=n / 40 + k),
                category=category,
            )
            articles[article.id] = article
            members.append(article.id)
        first = NOW - timedelta(hours=n / 40 + len(members))
        story = Story(
            id=f"story{n:04d}",
            article_ids=tuple(members),
            title=f"Story {n}",
            first_seen=first,
            updated=NOW - timedelta(hours=n / 40),
            category=category,
            score_parts=Score(score=1000 - n, sources=len(members), age_hours=n / 40),
        )
        stories.append(story)
        sentence = "A sentence of a summary, about as long as the ones a model writes for a story."
        summaries[story.id] = Summary(
            story_id=story.id,
            headline=f"Headline of story {n}, about as long as a real one tends to be",
            sentences=tuple(SummarySentence(sentence, tuple(members[:2])) for _ in range(3)),
            method="llm",
        )
    return stories, summaries, articles


def _best(job: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = perf_counter()
        job()
        best = min(best, perf_counter() - started)
    return best
