"""The discover site's channels, front-page hierarchy, themes, languages and self-containment."""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import feedparser
import lxml.html
import pytest

from aggregator.pipeline import select_channel_stories, select_front_page
from aggregator.records import Article, Score, Story, Summary, SummarySentence
from aggregator.render.pages import build_site
from aggregator.render.strings import CATALOGUES, ENGLISH, catalogue
from aggregator.render.views import category_slug
from aggregator.settings import Settings

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
SITE_URL = "https://news.example.org/"
SETTINGS = Settings(title="Brief", site_url=SITE_URL, max_stories=10)
CRAWL = NOW - timedelta(hours=1)  # every article of the fixture arrived in this one crawl


def _article(n: int, category: str, outlet: int, hours_ago: float) -> Article:
    return Article(
        id=f"a{n}",
        url=f"https://outlet{outlet}.example/news/{n}",
        title=f"Report {n}",
        source_id=f"outlet{outlet}",
        source_name=f"Outlet {outlet}",
        published=NOW - timedelta(hours=hours_ago),
        fetched_at=CRAWL,
        category=category,
    )


def fixture() -> tuple[list[Story], dict[str, Summary], dict[str, Article]]:
    """Four ranked stories in three categories; the first has nine outlets."""
    articles: dict[str, Article] = {}
    stories: list[Story] = []
    plan = [("world", 9), ("Tech & AI", 2), ("world", 3), ("science", 2)]
    n = 0
    for k, (category, outlets) in enumerate(plan):
        ids = []
        for outlet in range(outlets):
            n += 1
            articles[f"a{n}"] = _article(n, category, outlet + 1, hours_ago=20 - outlet)
            ids.append(f"a{n}")
        stories.append(
            Story(
                id=f"story{k}",
                article_ids=tuple(ids),
                title=f"Story {k} in {category}",
                first_seen=NOW - timedelta(hours=20),
                updated=NOW - timedelta(hours=21 - outlets),
                category=category,
                score_parts=Score(
                    score=10.0 - k, sources=outlets, languages=2, articles=outlets + 1
                ),
            )
        )
    said = {s.id: (SummarySentence("It happened.", s.article_ids[:1]),) for s in stories}
    summaries = {i: Summary(i, f"Headline {i}", said[i], "extractive") for i in said}
    return stories, summaries, articles


def build(settings: Settings = SETTINGS, **extra: object) -> dict[str, bytes]:
    return build_site(*fixture(), settings, NOW, **extra)  # type: ignore[arg-type]


def html(files: dict[str, bytes], name: str) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(files[name])


def pages(files: dict[str, bytes]) -> list[str]:
    return sorted(name for name in files if name.endswith(".html"))


# --- channels -------------------------------------------------------------------------------


def test_each_category_has_a_page_and_three_feeds() -> None:
    files = build()
    for slug in ("world", "science", category_slug("Tech & AI")):
        for name in ("index.html", "feed.xml", "atom.xml", "feed.json"):
            assert f"category/{slug}/{name}" in files
    assert re.fullmatch(r"[a-z0-9-]+", category_slug("Tech & AI"))


def test_navigation_links_on_every_page_resolve_to_files() -> None:
    files = build()
    for name in pages(files):
        nav = html(files, name).xpath("//nav[@class='channels']//a")
        labels = [a.text for a in nav]
        assert labels == ["All stories", "science", "Tech & AI", "world"], name
        for a in nav:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), a.get("href")))
            assert target in files, (name, a.get("href"))
        current = [a.text for a in nav if a.get("aria-current") == "page"]
        if name.startswith("category/world/"):
            assert current == ["world"]
        elif name == "index.html":
            assert current == ["All stories"]


def test_a_channel_page_lists_only_its_categorys_stories_in_rank_order() -> None:
    files = build()
    page = html(files, "category/world/index.html")
    links = page.xpath("//ol[@class='stories']//h2/a/@href")
    assert links == ["../../stories/story0.html", "../../stories/story2.html"]
    for href in links:
        assert posixpath.normpath(posixpath.join("category/world", href)) in files
    assert page.xpath("//ol[@class='stories']//a[@class='category']/text()") == ["world"] * 2
    science = html(files, "category/science/index.html")
    assert science.xpath("//ol[@class='stories']//h2/a/text()") == ["Headline story3"]


@pytest.mark.parametrize("feed", ["feed.xml", "atom.xml"])
def test_channel_feeds_parse_with_their_own_self_link(feed: str) -> None:
    files = build()
    parsed = feedparser.parse(files[f"category/world/{feed}"])
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert [e.link for e in parsed.entries] == [
        f"{SITE_URL}stories/story0.html",
        f"{SITE_URL}stories/story2.html",
    ]
    self_links = [link.href for link in parsed.feed.links if link.rel == "self"]
    assert self_links == [f"{SITE_URL}category/world/{feed}"]
    site_self = [
        link.href for link in feedparser.parse(files[feed]).feed.links if link.rel == "self"
    ]
    assert site_self == [f"{SITE_URL}{feed}"]


def test_channel_json_feed() -> None:
    feed = json.loads(build()["category/science/feed.json"])
    assert feed["feed_url"] == f"{SITE_URL}category/science/feed.json"
    assert feed["home_page_url"] == f"{SITE_URL}category/science/"
    assert [i["id"] for i in feed["items"]] == [f"{SITE_URL}stories/story3.html"]


def test_a_channel_page_autodiscovers_its_own_feeds() -> None:
    page = html(build(), "category/world/index.html")
    hrefs = page.xpath("//link[@rel='alternate']/@href")
    assert hrefs == [f"{SITE_URL}category/world/{f}" for f in ("feed.xml", "atom.xml", "feed.json")]


def test_a_sources_category_without_stories_keeps_an_empty_channel() -> None:
    files = build(categories=["markets", "world"])
    assert "No stories" in files["category/markets/index.html"].decode()
    parsed = feedparser.parse(files["category/markets/feed.xml"])
    assert not parsed.bozo and parsed.entries == []


def test_hostile_categories_make_safe_folders() -> None:
    stories, summaries, articles = fixture()
    stories[1] = dataclasses.replace(stories[1], category="../../etc/passwd" + "x" * 300)
    files = build_site(stories, summaries, articles, SETTINGS, NOW)
    for name in files:
        assert ".." not in name.split("/")
        if name.startswith("category/"):
            assert re.fullmatch(r"category/[a-z0-9-]{1,64}/[a-z]+\.(html|xml|json)", name), name


# --- front page -----------------------------------------------------------------------------


def test_front_page_hierarchy_and_one_time_per_story() -> None:
    page = html(build(), "index.html")
    items = page.xpath("//ol[@class='stories']/li")
    assert [li.get("class") for li in items] == ["lead", "lead", "lead", None]
    first = items[0]
    assert first.xpath("string(.//h2/a/@href)") == "stories/story0.html"
    assert first.xpath("string(.//span[@class='outlets'])") == "Outlet 1, Outlet 2 and 7 more"
    assert first.xpath("string(.//a[@class='category'])") == "world"
    assert first.xpath(".//p[@class='summary']//sup/a/@href") == ["https://outlet1.example/news/1"]
    times = first.xpath(".//p[@class='meta']//time")
    assert len(times) == 1
    assert times[0].get("datetime") == "2025-03-14T00:00:00Z"  # updated 12 h ago
    assert times[0].get("title") == "Fri 14 Mar 2025, 00:00 UTC"
    assert times[0].text == "12 h ago"
    assert first.xpath("string(.//p[@class='why'])") == "9 sources in 2 languages (10 articles)"
    css = build()["style.css"].decode()
    assert "li.lead h2" in css


def test_story_page_shows_each_time_once() -> None:
    page = html(build(), "stories/story0.html")
    meta = page.xpath("//p[@class='meta']")[0]
    text = " ".join(meta.text_content().split())
    assert text == "world · first seen 20 h ago · updated 12 h ago"
    assert [t.get("title") for t in meta.xpath(".//time")] == [
        "Thu 13 Mar 2025, 16:00 UTC",
        "Fri 14 Mar 2025, 00:00 UTC",
    ]


def test_whats_new_only_once_the_story_changed_after_it_was_published() -> None:
    # Published 20 h apart but stored in one crawl: nothing is new to a reader yet.
    assert "What's new" not in html(build(), "stories/story0.html").text_content()
    stories, summaries, articles = fixture()
    articles["late"] = dataclasses.replace(
        articles["a1"], id="late", url="https://late.example/x", title="Rescue ends",
        source_id="late", source_name="Late Post", published=NOW, fetched_at=NOW,
    )  # fmt: skip
    stories[0] = dataclasses.replace(stories[0], article_ids=(*stories[0].article_ids, "late"))
    files = build_site(stories, summaries, articles, SETTINGS, NOW)
    text = html(files, "stories/story0.html").text_content()
    assert "What's new: Rescue ends" in " ".join(text.split())


# --- themes, self-containment ---------------------------------------------------------------


def test_dark_theme_from_the_colour_scheme_preference() -> None:
    css = build()["style.css"].decode()
    dark = re.search(r"@media \(prefers-color-scheme: dark\)\s*\{\s*:root\s*\{([^}]*)\}", css)
    assert dark is not None and "--bg:" in dark.group(1) and "--fg:" in dark.group(1)
    assert re.search(r"nav\.channels ul\s*\{[^}]*flex-wrap:\s*wrap", css)  # no sideways scroll
    assert '<meta name="color-scheme" content="light dark">' in build()["index.html"].decode()


def test_nothing_is_loaded_from_another_host() -> None:
    articles = fixture()[2]
    files = build()
    allowed = {a.url for a in articles.values()} | {"https://github.com/aggregator-news/aggregator"}
    css = files["style.css"].decode()
    assert not re.search(r"https?:|@import|url\(", css)
    for name in pages(files):
        doc = html(files, name)
        assert not doc.xpath("//script | //iframe | //img | //video | //audio | //object")
        for element in doc.iter():
            if not isinstance(element.tag, str):
                continue
            for attr in ("src", "href", "srcset", "poster", "data"):
                value = element.get(attr)
                if value is None or not re.match(r"(?i)\s*(https?:)?//", value):
                    continue
                if urlsplit(value).netloc == urlsplit(SITE_URL).netloc:
                    continue
                assert element.tag == "a" and value in allowed, (name, element.tag, value)


# --- languages ------------------------------------------------------------------------------


def test_chinese_interface() -> None:
    files = build(Settings(title="简报", site_url=SITE_URL, language="zh", max_stories=10))
    index = files["index.html"].decode()
    assert '<html lang="zh">' in index
    page = html(files, "index.html")
    assert page.xpath("string(//h1)") == "过去24 小时的热门新闻"
    assert page.xpath("string(//nav[@class='channels']//a[1])") == "全部新闻"
    assert page.xpath("string((//p[@class='meta']//time)[1])") == "12 小时前"
    assert page.xpath("string((//span[@class='outlets'])[1])") == "Outlet 1、Outlet 2等 7 家"
    story = html(files, "stories/story0.html")
    assert story.xpath("string(//p[@class='back'])") == "← 全部新闻"
    assert "首次出现于20 小时前" in story.xpath("string(//p[@class='meta'])")
    entry = feedparser.parse(files["category/world/atom.xml"]).entries[0]
    assert "来源：" in entry.content[0].value  # the feeds' own words too


def test_hindi_interface_and_region_tags() -> None:
    files = build(Settings(title="Brief", site_url=SITE_URL, language="hi-IN", max_stories=10))
    page = html(files, "index.html")
    assert page.get("lang") == "hi-IN"
    assert page.xpath("string(//nav[@class='channels']//a[1])") == "सभी ख़बरें"


def test_a_missing_string_falls_back_to_english() -> None:
    assert catalogue("de") == ENGLISH  # no German catalogue: English throughout
    assert catalogue("zh-Hans-CN")["channels"] == "频道"
    for language, strings in CATALOGUES.items():
        assert set(strings) <= set(ENGLISH), language  # no key English lacks
        for key, text in strings.items():
            fields = sorted(re.findall(r"%\(\w+\)s", text))
            assert fields == sorted(re.findall(r"%\(\w+\)s", ENGLISH[key])), (language, key)
    hindi = catalogue("hi")
    assert hindi["list_sep"] == ENGLISH["list_sep"]  # Hindi has no entry of its own


# --- channels beyond the page ---------------------------------------------------------------


def test_a_channel_goes_on_below_the_front_page() -> None:
    stories, summaries, articles = fixture()
    small = Settings(title="Brief", site_url=SITE_URL, max_stories=2)
    page, below = stories[:2], stories[2:]
    files = build_site(page, summaries, articles, small, NOW, channel_stories=below)
    front = html(files, "index.html").xpath("//ol[@class='stories']//h2/a/@href")
    assert front == ["stories/story0.html", "stories/story1.html"]
    world = html(files, "category/world/index.html").xpath("//ol[@class='stories']//h2/a/@href")
    assert world == ["../../stories/story0.html", "../../stories/story2.html"]
    assert "stories/story2.html" in files and "stories/story3.html" in files
    entries = feedparser.parse(files["category/science/feed.xml"]).entries
    assert [e.link for e in entries] == [f"{SITE_URL}stories/story3.html"]


def test_channel_stories_fill_each_category_up_to_max_stories() -> None:
    def ranked(ident: str, category: str, sources: float = 3) -> Story:
        return Story(id=ident, article_ids=(), category=category,
                     score_parts=Score(score=1, sources=sources))  # fmt: skip

    stories = [ranked("w1", "world"), ranked("w2", "world"), ranked("t1", "tech"),
               ranked("w3", "world"), ranked("solo", "tech", sources=1), ranked("t2", "tech"),
               ranked("s1", "science"), ranked("none", "")]  # fmt: skip
    settings = Settings(max_stories=2)
    page = select_front_page(stories, settings)
    assert [s.id for s in page] == ["w1", "w2"]
    more = select_channel_stories(stories, page, settings)
    assert [s.id for s in more] == ["t1", "t2", "s1"]  # world is full; one source is not hot
