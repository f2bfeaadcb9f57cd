"""Retention on SQLite and PostgreSQL: articles older than retention_days lose their text, author
and image; their stories keep ids, titles and links, so the site and `export stories` of those
stories come out the same; runs and the schedule's digests prune; nothing to prune is cheap."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from aggregator.cli.main import main
from aggregator.errors import ConfigError
from aggregator.pipeline import Window, export, render_stage, run_once
from aggregator.records import Article, Story, Summary, SummarySentence
from aggregator.schedule import Cycle
from aggregator.settings import Settings
from aggregator.sources.load import load_config
from aggregator.store.storage import Storage
from aggregator.times import utcnow
from aggregator.urls import article_id

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WORDS = "the council voted on tuesday to rebuild the harbour wall before winter storms arrive"


def _article(name: str, source: str, when: datetime, n: int) -> Article:
    url = f"https://{source}.example/{name}"
    return Article(
        id=article_id(url),
        url=url,
        title=f"{name.title()} story reported by {source}",
        source_id=source,
        source_name=source.title(),
        text=f"{name} {source} {n}: " + " ".join([WORDS] * (6 + n)),
        published=when,
        fetched_at=when + timedelta(minutes=5),
        author=f"{source} desk",
        image=f"https://{source}.example/{name}.jpg",
        language="en",
    )


def fill(storage: Storage, now: datetime = NOW) -> dict[str, list[Article]]:
    """An old story (40 days), a story at the edge (29 days) and a fresh one, with summaries."""
    groups = {
        "old": [_article("old", s, now - timedelta(days=40, hours=i), i) for i, s in
                enumerate(("alpha", "beta"))],
        "edge": [_article("edge", s, now - timedelta(days=29), i) for i, s in
                 enumerate(("alpha", "gamma"))],
        "new": [_article("new", s, now - timedelta(hours=i + 1), i) for i, s in
                enumerate(("alpha", "beta", "gamma"))],
    }  # fmt: skip
    for story_id, members in groups.items():
        storage.add_articles(members)
        first, last = min(a.timestamp for a in members), max(a.timestamp for a in members)
        story = Story(id=story_id, article_ids=tuple(a.id for a in members),
                      title=f"The {story_id} story", first_seen=first, updated=last)  # fmt: skip
        storage.save_stories([story])
        sentences = (SummarySentence(f"What {story_id} says.", (members[0].id,)),
                     SummarySentence("And more.", tuple(a.id for a in members)))  # fmt: skip
        summary = Summary(story_id=story_id, headline=f"{story_id} headline",
                          sentences=sentences, method="extractive", created=last)  # fmt: skip
        storage.save_summary(summary)
    return groups


def test_prune_drops_the_text_of_old_articles_only(storage: Storage) -> None:
    groups = fill(storage)
    old_ids = [a.id for a in groups["old"]]
    assert storage.prune(NOW - timedelta(days=30)) == 2
    kept = storage.articles_by_id(a.id for g in groups.values() for a in g)
    for article in groups["old"]:
        pruned = kept[article.id]
        assert (pruned.text, pruned.author, pruned.image) == ("", "", "")
        assert (pruned.url, pruned.title, pruned.source_name, pruned.published) == (
            article.url, article.title, article.source_name, article.published,
        )  # fmt: skip
    for article in groups["edge"] + groups["new"]:
        assert kept[article.id] == article
    # the stories keep every member, their titles and summaries
    stories = {s.id: s for s in storage.stories()}
    assert set(stories["old"].article_ids) == set(old_ids)
    assert stories["old"].title == "The old story"
    assert storage.summaries(["old"])["old"].sentences[1].citations == tuple(old_ids)
    # the crawler still knows the pruned articles: seeing them again stores nothing
    assert storage.known_article_ids(old_ids) == set(old_ids)
    assert storage.add_articles(groups["old"]) == []
    assert storage.prune(NOW - timedelta(days=30)) == 0
    assert storage.prune(NOW - timedelta(days=28)) == 2  # the edge story's turn


def test_prune_works_in_batches(storage: Storage) -> None:
    when = NOW - timedelta(days=50)
    storage.add_articles(_article(f"a{n}", "alpha", when, 0) for n in range(25))
    assert storage.prune(NOW - timedelta(days=30), batch=10) == 25
    assert {a.text for a in storage.articles()} == {""}


def _site(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_pruned_stories_render_and_export_as_before(storage: Storage, tmp_path: Path) -> None:
    groups = fill(storage)
    settings = Settings(min_sources=1)
    window = Window.last(NOW, None)  # every story, the pruned ones included

    def snapshot(out: Path) -> tuple[dict[str, bytes], str]:
        render_stage(storage, settings, window, out)
        exported = io.StringIO()
        assert export("stories", storage, settings, window, exported) == 3
        return _site(out), exported.getvalue()

    site_before, stories_before = snapshot(tmp_path / "before")
    assert storage.prune(NOW - timedelta(days=30)) == 2
    site_after, stories_after = snapshot(tmp_path / "after")
    assert stories_after == stories_before
    assert site_after == site_before
    old_page = site_after["stories/old.html"].decode()
    assert all(a.url in old_page and a.title in old_page for a in groups["old"])


def test_nothing_to_prune_reads_only_the_index_of_unpruned_articles(tmp_path: Path) -> None:
    # SQLite's plan; PostgreSQL's planner picks by table statistics, not fixed on a tiny table
    with Storage(f"sqlite:///{tmp_path / 'db.sqlite'}") as storage:
        fill(storage)
        statements: list[tuple[str, object]] = []
        event.listen(
            storage.engine,
            "before_cursor_execute",
            lambda _c, _cur, sql, params, _ctx, _many: statements.append((sql, params)),
        )
        storage.prune(NOW - timedelta(days=30))
        [(update, params)] = [(s, p) for s, p in statements if s.startswith("UPDATE article")]
        with storage.engine.connect() as conn:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {update}", params).all()  # type: ignore[arg-type]
    details = " | ".join(str(row[-1]) for row in plan)
    assert "USING INDEX ix_article_unpruned (ts<?)" in details, details


def _config(tmp_path: Path, retention: str = "30") -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(
        "settings:\n"
        f"  retention_days: {retention}\n"
        "  min_sources: 1\n"
        f"  data_dir: {tmp_path / 'data'}\n"
        f"  output_dir: {tmp_path / 'site'}\n"
    )
    return path


def test_a_run_prunes_after_its_digest(db_url: str, tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))
    with Storage(db_url) as storage:
        groups = fill(storage)
        report = run_once(config, storage, now=NOW, do_crawl=False)
        assert report.pruned == 2 and report.render.stories == 1  # the fresh story
        assert run_once(config, storage, now=NOW, do_crawl=False).pruned == 0
        later = run_once(config, storage, now=NOW + timedelta(days=2), do_crawl=False)
        assert later.pruned == 2  # the edge story passed 30 days
        old = storage.articles_by_id(a.id for a in groups["old"] + groups["edge"])
        assert {a.text for a in old.values()} == {""}


def test_retention_null_keeps_everything(db_url: str, tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, retention="null"))
    with Storage(db_url) as storage:
        fill(storage)
        assert run_once(config, storage, now=NOW, do_crawl=False).pruned == 0
        assert "" not in {a.text for a in storage.articles()}


def test_the_schedules_digest_prunes(tmp_path: Path, db_url: str) -> None:
    config = load_config(_config(tmp_path))
    with Storage(db_url) as storage:
        fill(storage, now=utcnow())
        Cycle(config, storage, tmp_path / "site").digest()
        assert sum(1 for a in storage.articles() if not a.text) == 2
    assert (tmp_path / "site" / "index.html").is_file()


def test_a_retention_shorter_than_the_window_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("settings:\n  window_hours: 48\n  retention_days: 3\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "sources.yaml:3:3: settings.retention_days:" in str(caught.value)
    assert "window_hours + story_continuation_hours (120 h, 5 days)" in str(caught.value)


def test_db_prune_and_vacuum_give_the_space_back(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = db_url
    config = str(_config(tmp_path))
    old = NOW - timedelta(days=60)
    with Storage(db) as storage:
        long_text = " ".join([WORDS] * 200)  # about 17 kB each
        storage.add_articles(
            replace(_article(f"long{n}", "alpha", old, 0), text=long_text) for n in range(200)
        )
    now = ["--now", NOW.isoformat(), "--db", db, "--config", config]
    assert main(["db", "prune", *now]) == 0
    assert (
        "200 articles older than 30 days (2026-10-27 12:00 UTC) pruned" in capsys.readouterr().out
    )
    assert main(["db", "prune", *now]) == 0
    assert capsys.readouterr().out.startswith("0 articles older than 30 days")
    assert main(["db", "prune", "--days", "2", *now]) == 2
    assert "--days 2: must keep text at least" in capsys.readouterr().err
    with Storage(db) as storage:
        before = storage.size()
    assert main(["db", "vacuum", "--db", db, "--config", config]) == 0
    with Storage(db) as storage:
        after = storage.size()
    if db.startswith("sqlite"):  # the file is rewritten without the pruned text
        assert after < before / 5, (before, after)
    else:  # VACUUM marks the space reusable; the files keep their size for the next rows
        assert after <= before * 1.05, (before, after)
    assert " -> " in capsys.readouterr().out


def test_db_vacuum_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    with Storage(pg_url) as storage:
        fill(storage)
        storage.prune(NOW - timedelta(days=30))
    assert main(["db", "vacuum", "--db", pg_url, "--config", str(_config(tmp_path))]) == 0
