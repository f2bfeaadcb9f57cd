"""Rendering and publishing: golden output, feeds that parse, hostile text, atomic swaps."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import lxml.html
import pytest

from aggregator.errors import SiteWriteError
from aggregator.records import (
    Article,
    Score,
    Story,
    Summary,
    SummaryItem,
    SummaryItems,
    SummarySentence,
)
from aggregator.render.pages import TEMPLATES_DIR, build_site, render_site
from aggregator.render.publish import publish
from aggregator.render.views import category_slug, clean_text, safe_name, safe_url
from aggregator.settings import Settings
from tests.support.sites import assert_inert_html, chinese_site, hostile_site

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
SETTINGS = Settings(
    title="Morning Brief", site_url="https://news.example.org/", language="en-GB", max_stories=2
)
FEEDS = ("feed.xml", "atom.xml")
CHANNEL_FILES = ("atom.xml", "feed.json", "feed.xml", "index.html")


def article(n: int, hours_ago: float, **extra: object) -> Article:
    fields: dict[str, object] = {
        "id": f"a{n}",
        "url": f"https://outlet{n}.example/2025/03/story-{n}",
        "title": f"Report {n} on the harbour bridge",
        "source_id": f"outlet{n}",
        "source_name": f"Outlet {n}",
        "published": NOW - timedelta(hours=hours_ago),
        "category": "Local",
    }
    fields.update(extra)
    return Article(**fields)  # type: ignore[arg-type]


def sample() -> tuple[list[Story], dict[str, Summary], dict[str, Article]]:
    """Three ranked stories (one beyond max_stories), one of them without a summary."""
    articles = {
        a.id: a
        for a in (
            article(1, 6),
            article(2, 5, source_name="Café & Co", title="Bridge “reopens” <today>"),
            article(3, 2),
            article(4, 4, category="Science"),
            article(5, 1, category="Science"),
        )
    }
    stories = [
        Story(
            id="3f2a9c0d1e",
            article_ids=("a1", "a2", "a3"),
            title="Harbour bridge reopens",
            first_seen=NOW - timedelta(hours=6),
            updated=NOW - timedelta(hours=2),
            category="Local",
            score_parts=Score(score=3.2, sources=3, age_hours=6),
        ),
        Story(
            id="b7e4",
            article_ids=("a4", "a5"),
            title="Comet visible tonight",
            first_seen=NOW - timedelta(hours=4),
            updated=NOW - timedelta(hours=1),
            category="Science",
        ),
        Story(id="ffff", article_ids=("a5",), title="Not on the page", first_seen=NOW),
    ]
    summaries = {
        "3f2a9c0d1e": Summary(
            story_id="3f2a9c0d1e",
            headline="Harbour bridge reopens after repairs",
            sentences=(
                SummarySentence("The bridge reopened on Friday morning.", ("a1", "a2")),
                SummarySentence("Traffic is limited to 30 km/h & one lane.", ("a3", "missing")),
            ),
            method="extractive",
        )
    }
    return stories, summaries, articles


def site() -> dict[str, bytes]:
    return build_site(*sample(), SETTINGS, NOW)


def text_files(files: dict[str, bytes]) -> dict[str, str]:
    return {name: data.decode("utf-8") for name, data in files.items()}


# --- golden output --------------------------------------------------------------------------


def assert_golden(files: dict[str, bytes], name: str, folder: Path = GOLDEN) -> None:
    """The file as tests/golden/ holds it, byte for byte; UPDATE_GOLDEN=1 rewrites the copy."""
    golden = folder / name.replace("/", "__")
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(files[name])
    assert files[name] == golden.read_bytes(), f"{name} differs; UPDATE_GOLDEN=1 to accept"


@pytest.mark.parametrize(
    "name",
    [
        "index.html",
        "stories/3f2a9c0d1e.html",
        "stories/b7e4.html",  # without a summary
        "feed.xml",
        "atom.xml",
        "feed.json",
        *(f"category/local/{f}" for f in CHANNEL_FILES),
        "day/2025-03-14/index.html",
        "day/index.html",
        "feeds.opml",
    ],
)
def test_golden(name: str) -> None:
    files = site()
    assert files == site(), "output must be byte-deterministic"
    assert_golden(files, name)


@pytest.mark.parametrize(
    "name",
    [
        "index.html",
        "stories/bridge.html",
        "stories/bridge-old.html",  # merged into the bridge story
        *(f"category/{category_slug('财经')}/{f}" for f in CHANNEL_FILES),
        "feed.xml",
        "atom.xml",
        "feed.json",
    ],
)
def test_golden_chinese(name: str) -> None:
    """A site in Chinese, interface and articles: the same words in the same places."""
    files = chinese_site()
    assert files == chinese_site(), "output must be byte-deterministic"
    assert_golden(files, name, GOLDEN / "zh")


def test_site_layout_and_ordering() -> None:
    files = site()
    assert sorted(files) == [
        "atom.xml",
        *(f"category/{c}/{f}" for c in ("local", "science") for f in CHANNEL_FILES),
        "day/2025-03-14/index.html",  # today's edition (tests/test_edition.py)
        "day/atom.xml",
        "day/feed.json",
        "day/feed.xml",
        "day/index.html",
        "favicon.svg",
        "feed.json",
        "feed.xml",
        "feeds.opml",
        "index.html",
        "stories/3f2a9c0d1e.html",
        "stories/b7e4.html",
        "style.css",
    ]  # max_stories=2: the third story is left out everywhere
    index = files["index.html"].decode()
    assert index.index("Harbour bridge reopens after repairs") < index.index("Comet visible")
    assert "Not on the page" not in index
    assert '<html lang="en-GB">' in index
    assert index.count('<link rel="alternate"') == 4  # the site's three, the daily digest
    for href in ("feed.xml", "atom.xml", "feed.json", "day/feed.xml"):
        assert f'href="https://news.example.org/{href}"' in index
    assert "<script" not in index.lower()


def test_a_merged_story_page_sends_readers_to_the_survivor() -> None:
    redirects = {"old-bridge-story": "3f2a9c0d1e", "off-page": "ffff", "b7e4": "3f2a9c0d1e"}
    files = build_site(*sample(), SETTINGS, NOW, redirects=redirects)
    page = lxml.html.fromstring(files["stories/old-bridge-story.html"])
    assert page.xpath("string(//link[@rel='canonical']/@href)") == (
        "https://news.example.org/stories/3f2a9c0d1e.html"
    )
    refresh = page.xpath("string(//meta[@http-equiv='refresh']/@content)")
    assert refresh == "0; url=3f2a9c0d1e.html"
    assert page.xpath("string(//main/p[not(@class)]/a/@href)") == "3f2a9c0d1e.html"
    assert "stories/off-page.html" not in files  # its survivor is not on the page
    assert files["stories/b7e4.html"] == site()["stories/b7e4.html"]  # a live page stays
    assert {k: v for k, v in files.items() if k != "stories/old-bridge-story.html"} == site()


def test_citations_link_to_cited_articles() -> None:
    page = lxml.html.fromstring(site()["index.html"])
    summary = page.xpath("(//article)[1]//p[@class='summary']")[0]
    markers = [(a.text, a.get("href")) for a in summary.xpath(".//sup/a")]
    assert markers == [
        ("[1]", "https://outlet1.example/2025/03/story-1"),
        ("[2]", "https://outlet2.example/2025/03/story-2"),
        ("[3]", "https://outlet3.example/2025/03/story-3"),  # "missing" is dropped, not invented
    ]
    outlets = page.xpath("string((//article)[1]//span[@class='outlets'])")
    assert outlets == "Outlet 1, Café & Co and Outlet 3"  # the sources, in order, on one line
    story = lxml.html.fromstring(site()["stories/3f2a9c0d1e.html"])
    sources = story.xpath("//ol[@class='sources']/li")
    assert [li.xpath("string(.//span[@class='source'])") for li in sources] == [
        "Outlet 1",
        "Café & Co",
        "Outlet 3",
    ]
    assert page.xpath("string((//article)[1]//p[@class='why'])") == "3 sources"
    meta = page.xpath("string((//article)[1]//p[@class='meta'])")
    assert "updated 2 h ago" in meta
    times = story.xpath("//p[@class='meta']/time")
    assert [(t.get("datetime"), t.get("title"), t.text) for t in times] == [
        ("2025-03-14T06:00:00Z", "Fri 14 Mar 2025, 06:00 UTC", "6 h ago"),
        ("2025-03-14T10:00:00Z", "Fri 14 Mar 2025, 10:00 UTC", "2 h ago"),
    ]


def test_story_without_summary_renders_title_and_sources() -> None:
    page = lxml.html.fromstring(site()["stories/b7e4.html"])
    assert page.xpath("string(//h1)") == "Comet visible tonight"
    assert page.xpath("//p[@class='nosummary']")
    links = page.xpath("//ol[@class='sources']/li/a/@href")
    assert links == [
        "https://outlet4.example/2025/03/story-4",
        "https://outlet5.example/2025/03/story-5",
    ]
    assert page.xpath("string(//p[@class='why'])") == "2 sources"


def test_empty_input_renders_friendly_page_and_valid_feeds() -> None:
    files = build_site([], {}, {}, Settings(), NOW)
    assert "No stories in the last 24 hours yet" in files["index.html"].decode()
    for name in FEEDS:
        parsed = feedparser.parse(files[name])
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert parsed.entries == []
    assert json.loads(files["feed.json"])["items"] == []


# --- feeds ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FEEDS)
def test_feeds_parse_cleanly(name: str) -> None:
    parsed = feedparser.parse(site()[name])
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.title == "Morning Brief"
    entries = parsed.entries
    assert [e.title for e in entries] == [
        "Harbour bridge reopens after repairs",
        "Comet visible tonight",
    ]
    first = entries[0]
    assert first.link == "https://news.example.org/stories/3f2a9c0d1e.html"
    assert first.id == first.link
    assert first.published_parsed[:5] == (2025, 3, 14, 6, 0)
    assert first.updated_parsed[:5] == (2025, 3, 14, 10, 0)
    content = first.get("content", [{}])[0].get("value") or first.summary
    html = lxml.html.fromstring(content)
    assert html.xpath("//a/@href")[0] == "https://outlet1.example/2025/03/story-1"


def test_json_feed_shape() -> None:
    feed = json.loads(site()["feed.json"])
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["feed_url"] == "https://news.example.org/feed.json"
    assert len(feed["items"]) == 2
    for item in feed["items"]:
        assert {"id", "url", "title", "content_html", "date_published", "date_modified"} <= set(
            item
        )
        assert item["id"] == item["url"]
    assert feed["items"][0]["date_published"] == "2025-03-14T06:00:00Z"
    assert feed["items"][0]["date_modified"] == "2025-03-14T10:00:00Z"


def entry_ids(files: dict[str, bytes]) -> dict[str, list[tuple[str, str]]]:
    """(id, updated) of every entry, per feed."""
    out = {}
    for name in FEEDS:
        parsed = feedparser.parse(files[name])
        out[name] = [(e.id, e.updated) for e in parsed.entries]
    items = json.loads(files["feed.json"])["items"]
    out["feed.json"] = [(i["id"], i["date_modified"]) for i in items]
    return out


def test_guid_is_stable_while_the_story_grows() -> None:
    stories, summaries, articles = sample()
    before = entry_ids(build_site(stories, summaries, articles, SETTINGS, NOW))
    later = NOW + timedelta(hours=1)
    articles["a9"] = article(9, 0.5, published=later - timedelta(minutes=30))
    grown = dataclasses.replace(
        stories[0],
        article_ids=(*stories[0].article_ids, "a9"),
        updated=later - timedelta(minutes=30),
    )
    after = entry_ids(build_site([grown, *stories[1:]], summaries, articles, SETTINGS, later))
    for name in before:
        (id_before, updated_before), (id_after, updated_after) = before[name][0], after[name][0]
        assert id_before == id_after, name
        assert updated_before != updated_after, name


# --- hostile input --------------------------------------------------------------------------


def test_hostile_text_cannot_break_pages() -> None:
    files = hostile_site()
    pages = [name for name in files if name.endswith(".html")]
    assert len(pages) == 5  # the discover page, the story's, its channel's, its day's, the days'

    for name in pages:
        html = files[name].decode()
        assert "\x00" not in html and "\x0b" not in html
        assert_inert_html(html)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text, not run
    index = files["index.html"].decode()
    assert "javascript" not in "".join(lxml.html.fromstring(index).xpath("//@href")).lower()


@pytest.mark.parametrize("name", FEEDS)
def test_hostile_text_cannot_break_feeds(name: str) -> None:
    data = hostile_site()[name]
    ET.fromstring(data)  # well-formed XML, or this raises
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    (entry,) = parsed.entries
    assert entry.title == "<script>alert(1)</script>"
    content = entry.get("content", [{}])[0].get("value") or entry.summary
    assert_inert_html(content)
    text = lxml.html.fromstring(content).text_content()
    assert "Ends ]]> here </script><script>alert(2)</script>" in text  # survives as text


def test_hostile_text_json_feed() -> None:
    feed = json.loads(hostile_site()["feed.json"])
    item = feed["items"][0]
    assert "\x00" not in json.dumps(feed, ensure_ascii=False)
    assert_inert_html(item["content_html"])
    assert item["url"].startswith("https://news.example.org/stories/")


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>",
        "//evil.example/x",
        "/relative",
        "vbscript:x",
        "https://ok.example/a b",
    ],
)
def test_safe_url_refuses_non_http(url: str) -> None:
    assert safe_url(url) == ""


def test_safe_url_keeps_http() -> None:
    assert safe_url("https://a.example/x?y=1&z=2") == "https://a.example/x?y=1&z=2"
    assert safe_url("http://a.example") == "http://a.example"


def test_clean_text_strips_what_xml_cannot_carry() -> None:
    assert clean_text("a\x00b\x0bc\x1fd\tе\n\ud800f\ufffe") == "abcd\tе\nf"


@pytest.mark.parametrize(
    "story_id",
    ["../../etc/passwd", "/etc/passwd", "..", ".", "", "a" * 500, "A/B", "x\x00y", "CON", "é"],
)
def test_safe_name_is_plain_and_capped(story_id: str) -> None:
    name = safe_name(story_id)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name)
    assert len(name) <= 64


def test_safe_name_keeps_plain_ids_and_separates_lookalikes() -> None:
    assert safe_name("3f2a9c0d1e") == "3f2a9c0d1e"
    assert len({safe_name(i) for i in ("a/b", "a-b", "A-B", "a b")}) == 4


def test_hostile_ids_never_write_outside(tmp_path: Path) -> None:
    ids = ["../../escape", "/tmp/abs", "..", "x/../../y", "a" * 300, "\x00"]
    stories = [
        Story(id=i, article_ids=("a1",), title=f"story {n}", first_seen=NOW)
        for n, i in enumerate(ids)
    ]
    settings = Settings(max_stories=50)
    out = tmp_path / "deep" / "site"
    render_site(stories, {}, {"a1": article(1, 1)}, settings, out, NOW)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(out.resolve() in p.parents for p in written)  # the live release
    pages = sorted(p.name for p in (out / "stories").iterdir())
    assert len(pages) == len(ids)
    assert all(re.fullmatch(r"[a-z0-9-]{1,64}\.html", p) for p in pages)


# --- publishing -----------------------------------------------------------------------------


def beside(live: Path) -> list[str]:
    """What the site's folder holds: nothing but the site (a link) and its release store."""
    return sorted(p.name for p in live.parent.iterdir())


def releases(live: Path) -> int:
    return len(list((live.parent / f".{live.name}.releases").iterdir()))


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


class ExplodingFiles(dict[str, bytes]):
    """A files mapping whose iteration fails after a few files, like a crash mid-write."""

    def items(self) -> Iterator[tuple[str, bytes]]:  # type: ignore[override]
        for n, pair in enumerate(super().items()):
            if n == 3:
                raise OSError(28, "No space left on device")
            yield pair


@pytest.fixture
def live(tmp_path: Path) -> Path:
    out = tmp_path / "site"
    render_site(*sample(), SETTINGS, out, NOW, search=False)  # search: tests/test_search.py
    return out


def test_publish_writes_everything(live: Path) -> None:
    assert snapshot(live) == site()
    assert os.stat(live).st_mode & 0o755 == 0o755  # readable by a web server
    assert beside(live) == [".site.releases", "site"] and releases(live) == 1


def test_publish_replaces_the_whole_site(live: Path) -> None:
    publish({"index.html": b"new"}, live)
    assert snapshot(live) == {"index.html": b"new"}  # old story pages are gone
    assert beside(live) == [".site.releases", "site"]
    assert releases(live) == 2  # the previous release stays for readers still on it
    publish({"index.html": b"newer"}, live)
    assert snapshot(live) == {"index.html": b"newer"} and releases(live) == 2


def test_failure_mid_write_keeps_previous_site(live: Path) -> None:
    before = snapshot(live)
    broken = ExplodingFiles({f"f{n}.html": b"x" for n in range(10)})
    with pytest.raises(SiteWriteError, match="No space left on device; the previous site stays"):
        publish(broken, live)
    assert snapshot(live) == before
    assert beside(live) == [".site.releases", "site"] and releases(live) == 1


@pytest.mark.parametrize(
    "name", ["../evil.html", "/abs.html", "a/../../evil", "a//b", "", "x\\..\\y", "./x", "a/."]
)
def test_publish_refuses_escaping_paths(live: Path, name: str) -> None:
    before = snapshot(live)
    with pytest.raises(ValueError, match="refusing"):
        publish({"index.html": b"ok", name: b"evil"}, live)
    assert snapshot(live) == before
    assert beside(live) == [".site.releases", "site"] and releases(live) == 1


def test_publish_refuses_conflicting_paths(live: Path) -> None:
    before = snapshot(live)
    with pytest.raises(SiteWriteError, match="cannot publish the site"):
        publish({"stories": b"a file", "stories/x.html": b"under it"}, live)
    assert snapshot(live) == before
    assert beside(live) == [".site.releases", "site"] and releases(live) == 1


def test_template_error_keeps_previous_site(live: Path, tmp_path: Path) -> None:
    broken = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, broken)
    (broken / "story.html").write_text("{{ story.no_such_field }}", encoding="utf-8")
    before = snapshot(live)
    with pytest.raises(Exception, match="no_such_field"):
        render_site(*sample(), SETTINGS, live, NOW, templates_dir=broken)
    assert snapshot(live) == before
    assert beside(live) == [".site.releases", "site", "templates"] and releases(live) == 1


def test_publish_refuses_a_file_as_out_dir(tmp_path: Path) -> None:
    target = tmp_path / "site"
    target.write_bytes(b"not a directory")
    with pytest.raises(NotADirectoryError):
        publish({"index.html": b"x"}, target)
    assert target.read_bytes() == b"not a directory"


def test_publish_clears_what_a_killed_publish_left(live: Path) -> None:
    """Leftovers go on the next publish, however young: publishes hold a lock on the release
    store, so none of them can belong to a publish still running."""
    store = live.parent / ".site.releases"
    half = store / "r-20990101T000000-dead00"
    old_style = live.parent / ".site.new-crashed"
    for leftover in (half, old_style):
        leftover.mkdir()
        (leftover / "index.html").write_bytes(b"half")
    (live.parent / ".site.link-dead").symlink_to(half)
    publish({"index.html": b"new"}, live)
    assert not half.exists() and not old_style.exists()
    assert beside(live) == [".site.releases", "site"] and releases(live) == 2


def test_a_site_from_before_releases_becomes_the_previous_release(tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_bytes(b"old layout")
    publish({"index.html": b"new"}, out)
    assert out.is_symlink() and snapshot(out) == {"index.html": b"new"}
    assert releases(out) == 2


def test_an_editors_own_link_is_followed(tmp_path: Path) -> None:
    """site -> /var/www/news (a link the editor made): the site is published over there."""
    webroot = tmp_path / "www" / "news"
    webroot.mkdir(parents=True)
    (tmp_path / "site").symlink_to(webroot)
    publish({"index.html": b"x"}, tmp_path / "site")
    assert (tmp_path / "site").resolve().parent.name == ".news.releases"
    assert snapshot(webroot) == {"index.html": b"x"}


def test_a_developed_story_says_whats_new() -> None:
    early, late = article(1, 20.0), article(2, 1.0, title="Rescuers reach the last village")
    fresh = article(3, 2.0)
    # each article reached us when it was published: the late one came in a later crawl
    early, late, fresh = (
        dataclasses.replace(a, fetched_at=a.published) for a in (early, late, fresh)
    )
    developed = Story(id="dev", article_ids=(early.id, late.id), first_seen=early.published,
                      updated=late.published, title="A developing story")  # fmt: skip
    new = Story(id="new", article_ids=(fresh.id,), first_seen=fresh.published,
                updated=fresh.published, title="Just in")  # fmt: skip
    arts = {a.id: a for a in (early, late, fresh)}
    files = text_files(build_site([developed, new], {}, arts, SETTINGS, NOW))
    page = lxml.html.fromstring(files["stories/dev.html"]).text_content()
    assert "What's new:" in page and "Rescuers reach the last village" in page
    assert "What's new:" not in lxml.html.fromstring(files["stories/new.html"]).text_content()
    entries = feedparser.parse(files["atom.xml"].encode()).entries
    dev_entry = next(e for e in entries if e.link.endswith("stories/dev.html"))
    assert "Rescuers reach the last village" in dev_entry.content[0].value


def test_the_story_page_shows_the_items_with_citation_links_escaped() -> None:
    stories, summaries, articles = sample()
    hostile = "<script>alert(1)</script> & more"
    items = SummaryItems(
        talking_points=(SummaryItem(f"Point {hostile}", ("a1", "a3")),),
        perspectives=(
            SummaryItem("wants the bridge open", ("a2",), who="Mayor <b>Lind</b>"),
            SummaryItem("cites nothing the story has", ("missing",), who="Nobody"),
        ),
        timeline=(SummaryItem("Bridge closed", ("a1",), when="2025-03-13"),),
        why_it_matters=SummaryItem("The bridge carries 30,000 cars a day.", ("a3",)),
    )
    summaries["3f2a9c0d1e"] = dataclasses.replace(summaries["3f2a9c0d1e"], items=items)
    page = build_site(stories, summaries, articles, SETTINGS, NOW)["stories/3f2a9c0d1e.html"]
    text = page.decode()
    assert (
        "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in text
    )
    assert "Mayor &lt;b&gt;Lind&lt;/b&gt;" in text and "Nobody" not in text
    doc = lxml.html.fromstring(page)
    headings = [h.text_content() for h in doc.iter("h2")]
    assert {"Talking points", "Perspectives", "Timeline"} <= set(headings)
    [point] = doc.xpath("//ul[@class='points']/li")
    assert [a.get("href") for a in point.xpath(".//sup[@class='cite']/a")] == [
        articles["a1"].url,
        articles["a3"].url,
    ]
    [entry] = doc.xpath("//ol[@class='timeline']/li")
    assert entry.text_content().startswith("2025-03-13 Bridge closed")
    matters = doc.xpath("//p[@class='matters']")[0].text_content()
    assert matters == "Why it matters: The bridge carries 30,000 cars a day.[3]"
    # the feeds carry why it matters and the talking points, cited, as sanitised HTML
    files = build_site(stories, summaries, articles, SETTINGS, NOW)
    [entry] = [e for e in feedparser.parse(files["atom.xml"]).entries if "3f2a9c0d1e" in e.link]
    content = lxml.html.fromstring(entry.content[0].value)
    assert "Why it matters: The bridge carries 30,000 cars a day." in content.text_content()
    [point] = content.xpath("//ul/li[starts-with(., 'Point')]")
    assert point.text_content().startswith("Point <script>alert(1)</script> & more")
    assert [a.get("href") for a in point.xpath(".//a")] == [articles["a1"].url, articles["a3"].url]
    assert not content.xpath("//script")
    # without items the page has none of these sections
    plain = site()["stories/3f2a9c0d1e.html"].decode()
    assert "Talking points" not in plain and "Timeline" not in plain


def test_publishing_to_a_release_path_publishes_to_the_site_link(live: Path) -> None:
    """A caller that resolved the site's link (as `aggregator demo` once did) passes the live
    release's own path: the new release still replaces the link, never nests inside."""
    publish({"index.html": b"new"}, live.resolve())
    assert snapshot(live) == {"index.html": b"new"}
    assert beside(live) == [".site.releases", "site"] and releases(live) == 2
    assert all(not p.is_symlink() for p in (live.parent / ".site.releases").iterdir())


def test_absolute_dates_are_in_the_sites_language() -> None:
    from aggregator.render.strings import catalogue, date_time_text

    when = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    assert date_time_text(when, catalogue("en")) == "Fri 14 Mar 2025, 09:30 UTC"
    assert date_time_text(when, catalogue("zh")) == "2025年3月14日（周五） 09:30 UTC"
    assert date_time_text(when, catalogue("hi")) == "शुक्र, 14 मार्च 2025, 09:30 UTC"
    assert date_time_text(when, catalogue("de")) == "Fri 14 Mar 2025, 09:30 UTC"  # English fills
