"""The daily edition: each render stores the day's top stories as published; a page per day, an
index of days and previous/next links; past days render the same after their stories leave the
window and their articles are pruned; a daily-digest feed with one item per finished day; an
OPML list of the feeds; autodiscovery of each page's feeds."""

from __future__ import annotations

import json
import posixpath
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import feedparser
import lxml.html
import pytest

from aggregator.pipeline import Window, render_stage
from aggregator.records import Article, Edition, EditionStory, Score, Story, Summary
from aggregator.records import SummarySentence as Sentence
from aggregator.render.edition import day_of, edition_of, lead_image
from aggregator.render.pages import build_site
from aggregator.settings import Settings
from aggregator.sources.opml import read_opml
from aggregator.store.storage import Storage
from aggregator.urls import article_id

DAY1 = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
SETTINGS = Settings(
    title="Harbour Times", site_url="https://news.example.org/", min_sources=1, search=False
)


def _article(story: str, source: str, when: datetime) -> Article:
    url = f"https://{source}.example/{story}"
    return Article(
        id=article_id(url),
        url=url,
        title=f"{story.title()} as {source} told it",
        source_id=source,
        source_name=source.title(),
        text=f"{story} {source} " + "the council met and voted on the harbour wall " * 8,
        published=when,
        fetched_at=when + timedelta(minutes=5),
        image=f"https://{source}.example/{story}.jpg",
        category="world",
        language="en",
    )


def add_story(storage: Storage, story_id: str, when: datetime) -> Story:
    """A story of two outlets at ``when``, with a summary citing both."""
    members = [_article(story_id, s, when - timedelta(hours=i)) for i, s in enumerate(("a", "b"))]
    storage.add_articles(members)
    story = Story(
        id=story_id,
        article_ids=tuple(a.id for a in reversed(members)),
        title=f"The {story_id} story",
        first_seen=when - timedelta(hours=1),
        updated=when,
        category="world",
    )
    storage.save_stories([story])
    sentences = (Sentence(f"What {story_id} reported first.", (members[0].id, members[1].id)),)
    summary = Summary(story_id, f"Headline of {story_id}", sentences, "extractive", created=when)
    storage.save_summary(summary)
    return story


def site(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def render(storage: Storage, now: datetime, out: Path) -> dict[str, bytes]:
    render_stage(storage, SETTINGS, Window.last(now, SETTINGS.window_hours), out)
    return site(out)


def doc(files: dict[str, bytes], name: str) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(files[name])


def resolves(files: dict[str, bytes], page: str, href: str) -> bool:
    return posixpath.normpath(posixpath.join(posixpath.dirname(page), href)) in files


# --- storage -------------------------------------------------------------------------------


def test_an_edition_is_stored_and_read_back_as_published(storage: Storage) -> None:
    story = Story("s1", ("x", "y"), "Working title", DAY1 - timedelta(hours=3), DAY1, "world",
                  Score(score=2.5, sources=2, age_hours=3))  # fmt: skip
    summary = Summary("s1", "The headline", (Sentence("A fact.", ("x",)),), "llm")
    bare = Story("s2", ("z",), "No summary yet", DAY1, DAY1)
    entries = (EditionStory(story, summary, "https://x.example/a.jpg"), EditionStory(bare, None))
    edition = Edition(date(2026, 12, 1), DAY1, entries)
    storage.save_edition(edition)
    assert storage.editions() == [edition]
    # the day's next render replaces it: the edition is the day as it stands
    later = Edition(date(2026, 12, 1), DAY1 + timedelta(hours=2), (EditionStory(bare, None),))
    storage.save_edition(later)
    storage.save_edition(Edition(date(2026, 12, 2), DAY2, ()))  # a day without stories is not kept
    assert storage.editions() == [later]


# --- pure parts ------------------------------------------------------------------------------


def test_the_day_is_read_in_the_configured_time_zone() -> None:
    late = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    assert day_of(late) == date(2026, 12, 1)
    assert day_of(late, "Europe/Berlin") == date(2026, 12, 2)
    assert day_of(late, "America/New_York") == date(2026, 12, 1)


def test_the_lead_image_comes_from_the_first_article_that_has_one() -> None:
    first = _article("s", "a", DAY1)
    without = Article(**{**first.__dict__, "id": "n", "url": "https://n.example/", "image": ""})
    hostile = Article(**{**first.__dict__, "id": "h", "url": "https://h.example/",
                         "image": "javascript:alert(1)"})  # fmt: skip
    arts = {a.id: a for a in (first, without, hostile)}
    assert lead_image(Story("s", ("n", "h", first.id)), arts) == first.image
    assert lead_image(Story("s", ("n", "h")), arts) == ""
    weighty = Article(**{**first.__dict__, "id": "w", "url": "https://w.example/",
                         "image": "https://w.example/w.jpg", "weight": 2.0,
                         "title": "A wire report of its own", "text": "Other words."})  # fmt: skip
    assert lead_image(Story("s", (first.id, "w")), {**arts, "w": weighty}) == weighty.image
    edition = edition_of([Story("s", ("n", first.id))], {}, arts, DAY1, "UTC")
    assert edition.day == date(2026, 12, 1)
    assert [e.image for e in edition.stories] == [first.image]


# --- the site --------------------------------------------------------------------------------


def test_past_days_keep_their_page_after_leaving_the_window_and_pruning(
    tmp_path: Path,
) -> None:
    with Storage(f"sqlite:///{tmp_path / 'db.sqlite'}") as storage:
        add_story(storage, "first", DAY1 - timedelta(hours=1))
        day1 = render(storage, DAY1, tmp_path / "one")
        add_story(storage, "second", DAY2 - timedelta(hours=1))
        day2 = render(storage, DAY2, tmp_path / "two")
        # the first story left the window: the front page no longer shows it, its day does
        assert b"Headline of first" not in day2["index.html"]
        page = doc(day2, "day/2026-12-01/index.html")
        assert page.xpath("//ol[@class='stories']//h2/a/text()") == ["Headline of first"]
        assert page.xpath("//ol[@class='stories']//h2/a/@href") == ["../../stories/first.html"]
        assert "stories/first.html" in day2  # its story page stays: the archive
        assert day2["day/2026-12-01/index.html"].count(b"What first reported first.") == 1
        assert b"Today so far" in day1["day/2026-12-01/index.html"]

        storage.prune(DAY2 + timedelta(days=400))  # every article loses its text and image
        pruned = render(storage, DAY2, tmp_path / "pruned")
        for name in ("day/2026-12-01/index.html", "stories/first.html", "day/index.html"):
            assert pruned[name] == day2[name], name
        # a third day without stories still serves the first two
        day3 = render(storage, DAY2 + timedelta(days=1), tmp_path / "three")
        assert doc(day3, "day/2026-12-01/index.html").xpath("//h2/a/text()") == [
            "Headline of first"
        ]


def test_days_link_to_their_neighbours_and_the_index_lists_them_newest_first(
    tmp_path: Path,
) -> None:
    with Storage(f"sqlite:///{tmp_path / 'db.sqlite'}") as storage:
        add_story(storage, "first", DAY1 - timedelta(hours=1))
        render(storage, DAY1, tmp_path / "one")
        add_story(storage, "second", DAY2 - timedelta(hours=1))
        files = render(storage, DAY2, tmp_path / "two")
    one, two = "day/2026-12-01/index.html", "day/2026-12-02/index.html"
    assert doc(files, one).xpath("//a[@rel='prev']") == []
    assert doc(files, one).xpath("//a[@rel='next']/@href") == ["../../day/2026-12-02/index.html"]
    assert doc(files, two).xpath("//a[@rel='prev']/@href") == ["../../day/2026-12-01/index.html"]
    assert doc(files, two).xpath("//a[@rel='next']") == []
    assert "As the day ended" in doc(files, one).text_content()
    assert "Today so far" in doc(files, two).text_content()
    index = doc(files, "day/index.html")
    assert index.xpath("//ol[@class='days']//a/@href") == [
        "../day/2026-12-02/index.html",
        "../day/2026-12-01/index.html",
    ]
    for name in [n for n in files if n.endswith(".html")]:
        links = doc(files, name).xpath("//header//a[@class='edition']/@href")
        assert len(links) == 1 and resolves(files, name, links[0]), name
        for href in doc(files, name).xpath("//main//a/@href"):
            assert href.startswith("https://") or resolves(files, name, href), (name, href)


def test_the_daily_digest_has_one_item_per_finished_day(tmp_path: Path) -> None:
    with Storage(f"sqlite:///{tmp_path / 'db.sqlite'}") as storage:
        add_story(storage, "first", DAY1 - timedelta(hours=1))
        files = render(storage, DAY1, tmp_path / "one")
        assert feedparser.parse(files["day/feed.xml"]).entries == []  # the day is not over
        add_story(storage, "second", DAY2 - timedelta(hours=1))
        files = render(storage, DAY2, tmp_path / "two")
    day_url = "https://news.example.org/day/2026-12-01/index.html"
    for name in ("day/feed.xml", "day/atom.xml"):
        parsed = feedparser.parse(files[name])
        assert not parsed.bozo, (name, parsed.get("bozo_exception"))
        assert [e.id for e in parsed.entries] == [day_url]
        assert parsed.entries[0].title == "Daily edition: Tue 1 Dec 2026"
        content = (
            parsed.entries[0].get("content", [{}])[0].get("value") or parsed.entries[0].summary
        )
        assert "https://news.example.org/stories/first.html" in content
        assert "Headline of first" in content and "<script" not in content
    feed = json.loads(files["day/feed.json"])
    assert feed["feed_url"] == "https://news.example.org/day/feed.json"
    assert [i["id"] for i in feed["items"]] == [day_url]
    # each page of the edition names the digest feeds for autodiscovery
    for name in ("day/index.html", "day/2026-12-01/index.html"):
        alternates = doc(files, name).xpath("//head/link[@rel='alternate']/@href")
        assert alternates == [f"https://news.example.org/day/{f}" for f in
                              ("feed.xml", "atom.xml", "feed.json")]  # fmt: skip


def test_the_opml_file_lists_the_site_digest_and_channel_feeds() -> None:
    story = Story("s", ("a",), "A story", DAY1, DAY1, "Tech & AI")
    arts = {"a": Article(id="a", url="https://a.example/", title="A", source_id="a",
                         source_name="A", published=DAY1, category="Tech & AI")}  # fmt: skip
    files = build_site([story], {}, arts, SETTINGS, DAY1, categories=["world", "Tech & AI"])
    feeds = read_opml(files["feeds.opml"])
    assert [f.url for f in feeds] == [
        "https://news.example.org/feed.xml",
        "https://news.example.org/day/feed.xml",
        "https://news.example.org/category/tech-ai-ba83c2988009/feed.xml",
        "https://news.example.org/category/world/feed.xml",
    ]
    assert [f.title for f in feeds][2:] == ["Harbour Times · Tech & AI", "Harbour Times · world"]
    for url in (f.url for f in feeds):
        assert url.removeprefix("https://news.example.org/") in files


@pytest.mark.parametrize("language", ["zh-CN", "hi"])
def test_the_edition_speaks_the_site_language(language: str) -> None:
    settings = SETTINGS.model_copy(update={"language": language})
    files = build_site([], {}, {}, settings, DAY1)
    index = files["day/index.html"].decode()
    assert "Daily edition" not in index and "Daily editions" not in index


def test_a_hostile_past_day_renders_escaped_in_its_page_and_the_digest() -> None:
    from tests.support.sites import NASTY, assert_inert_html

    bad = Article(id="bad", url="JaVaScRiPt:alert(1)", title="<img src=x onerror=alert(1)>",
                  source_id="evil", source_name="</script><b>Evil</b>\x00", published=DAY1,
                  image="javascript:alert(2)")  # fmt: skip
    story = Story("../../etc/passwd", ("bad",), "<script>alert(1)</script>", DAY1, DAY1, "]]>")
    summary = Summary(
        story.id, "<script>alert(1)</script>\x00", (Sentence(NASTY, ("bad",)),), "llm"
    )
    past = Edition(date(2026, 11, 30), DAY1 - timedelta(days=1), (EditionStory(story, summary),))
    files = build_site([], {}, {"bad": bad}, SETTINGS, DAY1, editions=[past])
    page = files["day/2026-11-30/index.html"].decode()
    assert_inert_html(page)
    assert (
        "Ends ]]> here </script><script>alert(2)</script>"
        in lxml.html.fromstring(page).text_content()
    )
    assert any(name.startswith("stories/etc-passwd-") for name in files)  # a safe name
    for name in ("day/feed.xml", "day/atom.xml"):
        parsed = feedparser.parse(files[name])
        assert not parsed.bozo, (name, parsed.get("bozo_exception"))
        (entry,) = parsed.entries
        content = entry.get("content", [{}])[0].get("value") or entry.summary
        assert_inert_html(content)
        assert "<script>alert(1)</script>" in lxml.html.fromstring(content).text_content()
    feed = json.loads(files["day/feed.json"])
    assert "\x00" not in json.dumps(feed, ensure_ascii=False)
    assert_inert_html(feed["items"][0]["content_html"])


def test_a_past_days_story_merged_into_a_live_one_sends_readers_on(tmp_path: Path) -> None:
    with Storage(f"sqlite:///{tmp_path / 'db.sqlite'}") as storage:
        first = add_story(storage, "first", DAY1 - timedelta(hours=1))
        render(storage, DAY1, tmp_path / "one")
        second = add_story(storage, "second", DAY2 - timedelta(hours=1))
        merged = Story("second", (*first.article_ids, *second.article_ids), "Merged",
                       first.first_seen, second.updated, "world")  # fmt: skip
        storage.save_stories([merged], {"first": "second"})
        files = render(storage, DAY2, tmp_path / "two")
    old = doc(files, "stories/first.html")
    assert old.xpath("//meta[@http-equiv='refresh']/@content") == ["0; url=second.html"]
    # the day it was published still lists it as it was, linking to its page
    day = doc(files, "day/2026-12-01/index.html")
    assert day.xpath("//ol[@class='stories']//h2/a/text()") == ["Headline of first"]
