"""Storage on SQLite and the real PostgreSQL server: the same behaviour, no dialect-only SQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from aggregator.records import (
    Article,
    FetchResult,
    FetchStatus,
    Score,
    Story,
    Summary,
    SummarySentence,
)
from aggregator.store.storage import Storage
from aggregator.urls import article_id, canonical_url

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _article(n: int, hours_ago: float = 0.0, **kw: object) -> Article:
    url = f"https://news.example/{n}"
    return Article(
        id=article_id(url),
        url=url,
        title=f"Title {n} — ünïcode",
        source_id="src",
        source_name="Source",
        fetched_at=NOW - timedelta(hours=hours_ago),
        **kw,  # type: ignore[arg-type]
    )


def test_articles_stored_exactly_once(storage: Storage) -> None:
    batch = [_article(n, hours_ago=n) for n in range(5)]
    assert len(storage.add_articles(batch)) == 5
    assert storage.add_articles([*batch, _article(9)]) == [_article(9)]
    assert storage.count_articles() == 6
    assert storage.known_article_ids([batch[0].id, "nope"]) == {batch[0].id}


def test_a_crawl_batch_with_an_id_stored_meanwhile_keeps_the_stored_row(
    storage: Storage,
) -> None:
    """save_crawl inserts ids the crawl found new; one stored in between (another writer) is
    left as it is and the rest of the batch still goes in (a bulk path without ON CONFLICT,
    such as COPY, would have to keep this)."""
    stored = _article(1, text="first text", author="First")
    storage.add_articles([stored])
    batch = [_article(n, text=f"text {n}", published=NOW) for n in range(2, 40)]
    storage.save_crawl([*batch[:10], replace(stored, text="second text"), *batch[10:]], [])
    assert storage.count_articles() == 39
    found = storage.articles_by_id([stored.id, batch[0].id, batch[-1].id])
    assert found[stored.id] == stored  # untouched
    assert found[batch[0].id] == batch[0]
    assert found[batch[-1].id].text == "text 39" and found[batch[-1].id].published == NOW
    storage.save_crawl(batch[:3], [])  # all stored already: nothing changes, nothing fails
    assert storage.count_articles() == 39


def test_window_uses_published_else_fetched(storage: Storage) -> None:
    old_published = _article(1, published=NOW - timedelta(days=3))
    recent = _article(2, hours_ago=1)
    storage.add_articles([old_published, recent])
    in_window = storage.articles(since=NOW - timedelta(hours=24), until=NOW)
    assert [a.id for a in in_window] == [recent.id]
    everything = storage.articles()
    assert [a.id for a in everything] == [old_published.id, recent.id]  # oldest first
    assert everything[0].published == NOW - timedelta(days=3)
    assert everything[0].published.tzinfo is not None  # type: ignore[union-attr]


def test_stories_members_and_merge_redirect(storage: Storage) -> None:
    arts = [_article(n, hours_ago=5 - n) for n in range(5)]
    storage.add_articles(arts)
    a = Story(id="a", article_ids=(arts[0].id, arts[1].id), first_seen=NOW, updated=NOW)
    b = Story(id="b", article_ids=(arts[2].id,), first_seen=NOW, updated=NOW)
    storage.save_stories([a, b])
    assert storage.story_of_articles([arts[0].id, arts[2].id]) == {
        arts[0].id: "a",
        arts[2].id: "b",
    }
    # b turns out to be the same story as a: a survives with every member, b redirects to a
    merged = Story(id="a", article_ids=(arts[1].id, arts[2].id, arts[3].id), first_seen=NOW,
                   updated=NOW, score_parts=Score(score=2.5, sources=3.0))  # fmt: skip
    storage.save_stories([merged], merged={"b": "a"})
    [live] = storage.stories()
    assert live.id == "a"
    assert set(live.article_ids) == {arts[0].id, arts[1].id, arts[2].id, arts[3].id}
    assert live.score_parts == Score(score=2.5, sources=3.0) and live.score == 2.5
    assert storage.redirects(["a"]) == {"b": "a"}  # b's page redirects to a
    assert storage.redirects(["zzz"]) == {}


def test_stories_window_by_update_time(storage: Storage) -> None:
    art = _article(1)
    storage.add_articles([art])
    old = Story(id="old", article_ids=(), first_seen=NOW - timedelta(days=3),
                updated=NOW - timedelta(days=2))  # fmt: skip
    new = Story(id="new", article_ids=(art.id,), first_seen=NOW, updated=NOW)
    storage.save_stories([old, new])
    assert [s.id for s in storage.stories(since=NOW - timedelta(hours=24))] == ["new"]


def test_summary_round_trip(storage: Storage) -> None:
    summary = Summary(
        story_id="s",
        headline="Héadline <b>",
        sentences=(SummarySentence("One.", ("x", "y")), SummarySentence("Two.", ("y",))),
        method="llm",
        model="m",
        input_hash="h1",
        created=NOW,
    )
    storage.save_summary(summary)
    assert storage.summaries(["s"])["s"] == summary
    storage.save_summary(Summary(story_id="s", headline="H2", sentences=(), method="extractive"))
    assert storage.summaries(["s", "other"])["s"].headline == "H2"


def test_fetch_state_tracks_validators_and_failures(storage: Storage) -> None:
    ok = FetchResult(url="u", status=FetchStatus.OK, etag='"v1"', last_modified="Mon")
    storage.record_fetch("feed", ok, NOW, new_articles=4)
    fail = FetchResult(url="u", status=FetchStatus.ERROR, error="HTTP 500")
    storage.record_fetch("feed", fail, NOW + timedelta(minutes=30))
    storage.record_fetch("feed", fail, NOW + timedelta(minutes=60))
    state = storage.fetch_state("feed")
    assert (state.etag, state.last_modified) == ('"v1"', "Mon")  # kept through failures
    assert state.consecutive_failures == 2
    assert state.last_error == "HTTP 500"
    assert state.last_success == NOW
    assert state.articles_total == 4
    storage.record_fetch("feed", FetchResult(url="u", status=FetchStatus.NOT_MODIFIED), NOW)
    assert storage.fetch_state("feed").consecutive_failures == 0
    assert storage.fetch_states().keys() == {"feed"}
    assert storage.fetch_state("never").consecutive_failures == 0


def test_large_batches_cross_chunk_boundaries(storage: Storage) -> None:
    batch = [_article(n) for n in range(1234)]
    assert len(storage.add_articles(batch)) == 1234
    assert len(storage.known_article_ids(a.id for a in batch)) == 1234
    assert len(storage.articles_by_id(a.id for a in batch)) == 1234


def test_times_compare_exactly_as_the_column_type_binds_them(storage: Storage) -> None:
    """Articles go in through the driver's own INSERT; their stored times must compare with
    the times SQLAlchemy binds in queries: an article exactly at a window's edge is in it,
    whatever zone its time was given in, and one a microsecond later is not."""
    edge = _article(1, published=NOW.astimezone(timezone(timedelta(hours=1))))  # 13:00+01:00
    later = _article(2, published=NOW + timedelta(microseconds=1))
    storage.add_articles([edge, later])
    assert [a.id for a in storage.articles(since=NOW, until=NOW)] == [edge.id]
    assert [a.id for a in storage.articles(since=NOW)] == [edge.id, later.id]
    stored = storage.articles_by_id([edge.id])[edge.id]
    assert stored.published == NOW
    assert stored.published.tzinfo is not None  # type: ignore[union-attr]


def test_canonical_url_strips_tracking() -> None:
    url = "HTTPS://News.Example:443/a/b?utm_source=x&id=3&fbclid=y#top"
    assert canonical_url(url) == "https://news.example/a/b?id=3"
    assert article_id(url) == article_id("https://news.example/a/b?id=3")
    assert article_id(guid="g1", source_id="s") != article_id(guid="g1", source_id="t")


def test_nul_characters_are_dropped_the_same_way_on_both_databases(storage: Storage) -> None:
    """PostgreSQL refuses NUL in text (one such line failed a whole ingest); SQLite keeps it.
    Every writer goes through the same column types, so both store the text without it."""
    dirty = _article(1, text="before\x00after", author="A\x00B", language="e\x00n")
    clean = _article(2)
    assert [a.id for a in storage.add_articles([dirty, clean])] == [dirty.id, clean.id]
    stored = storage.articles_by_id([dirty.id])[dirty.id]
    assert (stored.text, stored.author, stored.language) == ("beforeafter", "AB", "en")
    story = Story(id="s", article_ids=(dirty.id,), title="T\x00itle", first_seen=NOW, updated=NOW)
    storage.save_stories([story])
    assert storage.stories()[0].title == "Title"
    summary = Summary(story_id="s", headline="H\x00", sentences=(SummarySentence("x\x00", ("a",)),),
                      method="llm", note="n\x00")  # fmt: skip
    storage.save_summary(summary)
    saved = storage.summaries(["s"])["s"]
    assert (saved.headline, saved.note) == ("H", "n")
    failed = FetchResult(url="https://x.example/", status=FetchStatus.ERROR, error="bad\x00body")
    storage.record_fetch("src", failed, NOW)
    assert storage.fetch_state("src").last_error == "badbody"
