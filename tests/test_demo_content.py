"""The offline demo: its content has the promised shape, and the server serves it correctly.

Everything is fetched over real HTTP from 127.0.0.1 and parsed with feedparser, as the crawler will.
"""

from __future__ import annotations

import html
import re
import socket
import struct
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest

from aggregator.demo.content import DemoArticle, DemoContent, DemoOutlet, load_demo_content
from aggregator.demo.server import DemoServer, demo_config, numeric_references

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
# Never let an environment proxy see loopback requests.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Fetched:
    status: int
    headers: Message
    body: bytes


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Fetched:
    assert urlsplit(url).hostname == "127.0.0.1"
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with OPENER.open(request, timeout=10) as response:
            return Fetched(response.status, response.headers, response.read())
    except urllib.error.HTTPError as exc:  # 304 and 404 arrive as errors
        return Fetched(exc.code, exc.headers, exc.read())


@pytest.fixture(scope="module")
def content() -> DemoContent:
    return load_demo_content()


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    with DemoServer(now=NOW) as srv:
        yield srv


def _by_outlet(content: DemoContent) -> list[DemoOutlet]:
    return list(content.outlets)


# ---------------------------------------------------------------- the content's shape


def test_outlets_are_distinct_and_multilingual(content: DemoContent) -> None:
    assert 6 <= len(content.outlets) <= 10
    assert len({o.name for o in content.outlets}) == len(content.outlets)
    assert len({o.id for o in content.outlets}) == len(content.outlets)
    languages = Counter(o.language for o in content.outlets)
    assert {"en", "de", "es", "fr"} <= set(languages)
    assert sum(n for lang, n in languages.items() if lang != "en") >= 2


def test_feed_formats_and_text_modes_are_mixed(content: DemoContent) -> None:
    kinds = {(o.feed_format, o.feed_text) for o in content.outlets}
    assert {"rss", "atom"} == {k[0] for k in kinds}
    assert {"full", "teaser"} == {k[1] for k in kinds}
    assert any(o.full_text for o in content.outlets)
    assert any(not o.full_text for o in content.outlets)


def test_articles_and_stories_have_the_promised_shape(content: DemoContent) -> None:
    articles = content.articles
    assert 40 <= len(articles) <= 60
    assert 8 <= len(content.stories) <= 15
    used = {a.story for _, a in articles}
    assert used == {s.key for s in content.stories}  # no story without articles
    assert len({a.title for _, a in articles}) == len(articles)
    for outlet, article in articles:
        assert 3 <= len(article.paragraphs) <= 6, article.slug
        assert all(len(p) > 30 for p in article.paragraphs), article.slug
        assert len(article.body) > 600, article.slug  # real prose, not a stub
        assert "lorem" not in article.body.lower()
        assert article.teaser and article.title, article.slug
        assert outlet.article_path_for(article).startswith(f"/{outlet.id}/")


def test_stories_overlap_across_outlets_and_languages(content: DemoContent) -> None:
    outlets: dict[str, set[str]] = defaultdict(set)
    languages: dict[str, set[str]] = defaultdict(set)
    for outlet, article in content.articles:
        outlets[article.story].add(outlet.id)
        languages[article.story].add(outlet.language)
    assert sum(len(o) >= 3 for o in outlets.values()) >= 4  # several big shared stories
    assert sum(len(o) == 1 for o in outlets.values()) >= 3  # and some exclusives
    crosslingual = [k for k, langs in languages.items() if "en" in langs and len(langs) > 1]
    assert 1 <= len(crosslingual) <= 3


def test_a_few_articles_fall_outside_the_24_hour_window(content: DemoContent) -> None:
    old = [a for _, a in content.articles if a.hours_ago > 24]
    assert 2 <= len(old) <= 4
    assert all(a.hours_ago < 72 for _, a in content.articles)


def test_rough_edges_are_present(content: DemoContent) -> None:
    articles = [a for _, a in content.articles]
    assert sum("utm_source=" in a.link_query for a in articles) == 1
    assert sum(not a.dated_in_feed for a in articles) == 1
    assert any(o.numeric_entities for o in content.outlets)


def test_numeric_references_escape_and_encode() -> None:
    assert numeric_references("Rovers’ <win> & ‘joy’") == (
        "Rovers&#8217; &lt;win&gt; &amp; &#8216;joy&#8217;"
    )


# ---------------------------------------------------------------- feeds over HTTP


def _entries_by_slug(outlet: DemoOutlet, parsed: feedparser.FeedParserDict) -> dict[str, dict]:
    out = {}
    for entry in parsed.entries:
        slug = next(a.slug for a in outlet.articles if a.title == entry.title)
        out[slug] = entry
    return out


@pytest.mark.parametrize("outlet", _by_outlet(load_demo_content()), ids=lambda o: o.id)
def test_feed_parses_with_every_article(server: DemoServer, outlet: DemoOutlet) -> None:
    response = fetch(server.feed_urls[outlet.id])
    assert response.status == 200
    kind = "rss" if outlet.feed_format == "rss" else "atom"
    assert response.headers["Content-Type"] == f"application/{kind}+xml; charset=utf-8"
    assert response.headers["ETag"] and response.headers["Last-Modified"]

    parsed = feedparser.parse(response.body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == ("rss20" if kind == "rss" else "atom10")
    assert parsed.feed.title == outlet.name
    assert len(parsed.entries) == len(outlet.articles)
    assert {e.title for e in parsed.entries} == {a.title for a in outlet.articles}


@pytest.mark.parametrize("outlet", _by_outlet(load_demo_content()), ids=lambda o: o.id)
def test_feed_text_dates_and_links(server: DemoServer, outlet: DemoOutlet) -> None:
    parsed = feedparser.parse(fetch(server.feed_urls[outlet.id]).body)
    entries = _entries_by_slug(outlet, parsed)
    for article in outlet.articles:
        entry = entries[article.slug]
        page = server.article_url(outlet, article)
        assert entry.link.split("?")[0] == page
        assert html.unescape(entry.summary) == article.teaser
        if outlet.feed_text == "full":
            body = html.unescape(entry.content[0].value)
            assert body.count("<p>") == len(article.paragraphs)
            for paragraph in article.paragraphs:
                assert paragraph in body, article.slug
        else:
            assert "content" not in entry
        _check_date(entry, article)


def _check_date(entry: dict, article: DemoArticle) -> None:
    if not article.dated_in_feed:
        assert "published_parsed" not in entry
        return
    published = datetime(*entry.published_parsed[:6], tzinfo=UTC)
    expected = NOW - timedelta(hours=article.hours_ago)
    assert abs((published - expected).total_seconds()) < 1, article.slug


def test_feed_with_numeric_references_decodes_to_the_real_title(server: DemoServer) -> None:
    content = load_demo_content()
    outlet = next(o for o in content.outlets if o.numeric_entities)
    raw = fetch(server.feed_urls[outlet.id]).body
    assert b"&#8217;" in raw  # written as a WordPress feed would
    titles = {e.title for e in feedparser.parse(raw).entries}
    assert any("’" in t for t in titles)
    assert any("&" in t for t in titles)  # &amp; in the XML, a plain & after parsing


def test_tracking_link_serves_the_same_page(server: DemoServer, content: DemoContent) -> None:
    outlet, article = next((o, a) for o, a in content.articles if a.link_query)
    url = server.article_url(outlet, article)
    tracked = fetch(f"{url}?{article.link_query}")
    assert tracked.status == 200
    assert tracked.body == fetch(url).body


# ---------------------------------------------------------------- article pages over HTTP


def test_every_article_page_is_a_full_html_document(
    server: DemoServer, content: DemoContent
) -> None:
    for outlet, article in content.articles:
        response = fetch(server.article_url(outlet, article))
        assert response.status == 200, article.slug
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        page = response.body.decode("utf-8")
        assert page.startswith("<!DOCTYPE html>")
        assert f'<html lang="{outlet.language}">' in page
        _check_chrome(page)
        _check_metadata(page, server, outlet, article)
        text = html.unescape(page)
        for paragraph in article.paragraphs:
            assert paragraph in text, article.slug


def _check_chrome(page: str) -> None:
    """Boilerplate the extractor has to see past."""
    for marker in (
        '<header class="masthead">',
        '<nav class="sections"',
        'class="cookie-banner"',
        'class="ad-slot',
        'class="related"',
        '<footer class="site-footer">',
    ):
        assert marker in page, marker
    assert page.count("<article") == 1 and page.count("</article>") == 1


def _check_metadata(
    page: str, server: DemoServer, outlet: DemoOutlet, article: DemoArticle
) -> None:
    def meta(prop: str) -> str:
        match = re.search(rf'<meta property="{prop}" content="([^"]*)"', page)
        assert match, prop
        return html.unescape(match.group(1))

    assert meta("og:title") == article.title
    assert meta("og:url") == server.article_url(outlet, article)
    assert meta("og:site_name") == outlet.name
    assert meta("og:type") == "article"
    published = (NOW - timedelta(hours=article.hours_ago)).isoformat(timespec="seconds")
    assert meta("article:published_time") == published
    assert f'<time datetime="{published}"' in page


# ---------------------------------------------------------------- HTTP behaviour


def test_conditional_requests_get_304(server: DemoServer) -> None:
    url = next(iter(server.feed_urls.values()))
    first = fetch(url)
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]

    by_etag = fetch(url, {"If-None-Match": etag})
    assert by_etag.status == 304 and by_etag.body == b""
    assert by_etag.headers["ETag"] == etag

    by_date = fetch(url, {"If-Modified-Since": last_modified})
    assert by_date.status == 304

    changed = fetch(url, {"If-None-Match": '"something-else"', "If-Modified-Since": last_modified})
    assert changed.status == 200 and changed.body == first.body  # If-None-Match wins

    older = fetch(url, {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert older.status == 200


def test_validators_are_stable_and_last_modified_is_the_newest_item(
    server: DemoServer, content: DemoContent
) -> None:
    outlet = content.outlets[0]
    a, b = fetch(server.feed_urls[outlet.id]), fetch(server.feed_urls[outlet.id])
    assert a.headers["ETag"] == b.headers["ETag"] and a.body == b.body
    newest = min(
        (x.updated_hours_ago if x.updated_hours_ago is not None else x.hours_ago)
        for x in outlet.articles
    )
    expected = (NOW - timedelta(hours=newest)).replace(microsecond=0)
    assert (
        datetime.strptime(a.headers["Last-Modified"], "%a, %d %b %Y %H:%M:%S GMT").replace(
            tzinfo=UTC
        )
        == expected
    )


def test_head_and_unknown_paths(server: DemoServer) -> None:
    url = next(iter(server.feed_urls.values()))
    head = fetch(url, method="HEAD")
    assert head.status == 200 and head.body == b""
    assert int(head.headers["Content-Length"]) == len(fetch(url).body)
    missing = fetch(server.base_url + "/no-such-outlet/feed.xml")
    assert missing.status == 404
    assert fetch(server.base_url + "/robots.txt").status == 200


def test_index_and_front_pages_link_everything(server: DemoServer, content: DemoContent) -> None:
    index = fetch(server.base_url + "/").body.decode()
    for outlet in content.outlets:
        assert server.feed_urls[outlet.id] in index
        front = fetch(f"{server.base_url}/{outlet.id}/")
        assert front.status == 200
        for article in outlet.articles:
            assert server.article_url(outlet, article) in front.body.decode()


def test_story_labels_cover_every_article_page(server: DemoServer, content: DemoContent) -> None:
    labels = server.story_labels
    assert len(labels) == len(content.articles)
    assert set(labels.values()) == {s.key for s in content.stories}
    assert all(url.startswith(server.base_url + "/") for url in labels)


def test_times_follow_the_servers_clock(content: DemoContent) -> None:
    later = NOW + timedelta(days=3)
    outlet = next(o for o in content.outlets if o.feed_format == "atom")
    with DemoServer(now=later) as srv:
        parsed = feedparser.parse(fetch(srv.feed_urls[outlet.id]).body)
        assert srv.base_url.startswith("http://127.0.0.1:")
    newest = min(a.hours_ago for a in outlet.articles)
    published = max(datetime(*e.published_parsed[:6], tzinfo=UTC) for e in parsed.entries)
    assert abs((published - (later - timedelta(hours=newest))).total_seconds()) < 1


def test_two_servers_run_side_by_side() -> None:
    with DemoServer(now=NOW) as one, DemoServer(now=NOW) as two:
        assert one.base_url != two.base_url
        url_one = next(iter(one.feed_urls.values()))
        url_two = next(iter(two.feed_urls.values()))
        assert one.base_url.encode() in fetch(url_one).body
        assert two.base_url.encode() in fetch(url_two).body


# ---------------------------------------------------------------- the demo config


def test_demo_config_validates_and_points_at_the_server(
    server: DemoServer, content: DemoContent, tmp_path: Path
) -> None:
    config = demo_config(server.base_url, out_dir=tmp_path / "site", data_dir=tmp_path / "data")
    settings = config.settings
    assert settings.title == "Aggregator demo"
    assert settings.output_dir == str(tmp_path / "site")
    assert settings.data_dir == str(tmp_path / "data")
    assert settings.fetch.allow_private_networks is True
    assert not settings.llm.configured
    assert {s.id: s.url for s in config.sources} == server.feed_urls
    for outlet in content.outlets:
        source = config.source(outlet.id)
        assert source is not None
        assert source.name == outlet.name
        assert source.language == outlet.language
        assert source.category == outlet.category
        assert source.weight == outlet.weight
        assert source.full_text is (outlet.feed_text == "teaser")


def test_demo_config_quotes_awkward_paths(tmp_path: Path) -> None:
    odd = tmp_path / 'with "quotes": and # hash'
    config = demo_config("http://127.0.0.1:9", out_dir=odd, data_dir=odd / "d")
    assert config.settings.output_dir == str(odd)
    assert config.settings.data_dir == str(odd / "d")


def test_a_client_hanging_up_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    """A connection reset by the client (a pool dropping an idle socket) is not reported as a
    server error: the crawl's stderr carries only the crawl's own messages."""
    with DemoServer() as server:
        for _ in range(3):
            client = socket.create_connection(("127.0.0.1", server.port))
            client.sendall(b"GET / HTTP/1.1\r\nHost: x")  # an unfinished request line...
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # ...then a reset (RST), as a pool closing an idle socket sends
        with urllib.request.urlopen(f"{server.base_url}/robots.txt") as response:
            assert response.status == 200  # and the server still serves
        time.sleep(0.2)  # the handler threads have met the resets
    assert capfd.readouterr().err == ""
