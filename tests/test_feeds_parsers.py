"""Every feed the site writes (RSS, Atom and JSON Feed, for the whole site and for each channel)
reads cleanly in independent parsers: a strict XML parser, feedparser and fastfeedparser, which
must agree with each other and with the page beside the feed; JSON Feed against the 1.1 spec's
rules. Hostile text stays inert in every one of them."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import fastfeedparser
import feedparser
import lxml.etree
import lxml.html
import pytest

from tests.support.site_tools import site_files
from tests.support.sites import assert_inert_html, chinese_site, hostile_site

SITES = ("demo", "chinese", "hostile")
XML_FEEDS = {"feed.xml": "rss20", "atom.xml": "atom10"}  # file name -> feedparser's version
JSON_FEED = "feed.json"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]|\\u00[01][0-9a-fA-F]")
_STRICT_XML = lxml.etree.XMLParser(recover=False, resolve_entities=False, no_network=True)


@pytest.fixture(scope="module")
def sites(demo_site: Path) -> dict[str, dict[str, bytes]]:
    return {"demo": site_files(demo_site), "chinese": chinese_site(), "hostile": hostile_site()}


def feeds(files: Mapping[str, bytes], name: str) -> dict[str, bytes]:
    """Every feed of that file name: the site's and each channel's."""
    found = {path: data for path, data in files.items() if posixpath.basename(path) == name}
    assert name in found and len(found) >= 2, sorted(found)  # the site's and a channel's
    return found


def listed(files: Mapping[str, bytes], feed_path: str) -> list[str]:
    """The story pages the page beside a feed lists, as absolute paths within the site."""
    folder = posixpath.dirname(feed_path)
    page = lxml.html.fromstring(files[posixpath.join(folder, "index.html")])
    hrefs = page.xpath("//ol[@class='stories']//h2/a/@href")
    return [posixpath.normpath(posixpath.join(folder, h)) for h in hrefs]


def story_path(url: str) -> str:
    """A story's path within the site, from its absolute URL in a feed."""
    return "stories/" + url.rsplit("/stories/", 1)[1]


def content_of(entry: Any) -> str:
    content = entry.get("content") or []
    return str(content[0]["value"] if content else entry.get("summary", ""))


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("name", XML_FEEDS)
def test_xml_feeds_read_alike_in_three_parsers(
    sites: dict[str, dict[str, bytes]], site: str, name: str
) -> None:
    files = sites[site]
    for path, data in feeds(files, name).items():
        lxml.etree.fromstring(data, _STRICT_XML)  # well-formed, or this raises
        ours = feedparser.parse(data)
        assert not ours.bozo, f"{path}: {ours.get('bozo_exception')}"
        assert ours.version == XML_FEEDS[name], path
        theirs = fastfeedparser.parse(data)
        assert [e.title for e in ours.entries] == [e.get("title") for e in theirs.entries], path
        links = [e.link for e in ours.entries]
        assert links == [e.get("link") for e in theirs.entries], path
        assert [story_path(u) for u in links] == listed(files, path), path
        assert ours.feed.title == theirs.feed.get("title"), path
        for entry in ours.entries:
            assert entry.title and entry.id == entry.link, path
            assert entry.published_parsed and entry.updated_parsed, path
            assert_inert_html(content_of(entry))


def json_feed_problems(feed: Any) -> list[str]:
    """What breaks a rule of JSON Feed 1.1 (https://jsonfeed.org/version/1.1) in a feed."""
    problems = []

    def rfc3339(value: object) -> bool:
        try:
            return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
        except ValueError:
            return False

    if not isinstance(feed, dict):
        return ["the top level is not an object"]
    if feed.get("version") != JSON_FEED_VERSION:
        problems.append(f"version is {feed.get('version')!r}")
    if not isinstance(feed.get("title"), str) or not feed["title"]:
        problems.append("title is required")
    for key in ("home_page_url", "feed_url", "description", "language"):
        if key in feed and not isinstance(feed[key], str):
            problems.append(f"{key} is not a string")
    items = feed.get("items")
    if not isinstance(items, list):
        return [*problems, "items is required, an array"]
    ids = [item.get("id") for item in items if isinstance(item, dict)]
    if len(set(map(str, ids))) != len(items):
        problems.append("items are not objects with distinct ids")
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        if not isinstance(item.get("id"), str) or not item["id"]:
            problems.append(f"item {n}: id is required, a string")
        if not any(isinstance(item.get(k), str) for k in ("content_html", "content_text")):
            problems.append(f"item {n}: content_html or content_text is required")
        for key in ("url", "title", "summary"):
            if key in item and not isinstance(item[key], str):
                problems.append(f"item {n}: {key} is not a string")
        for key in ("date_published", "date_modified"):
            if key in item and not rfc3339(item[key]):
                problems.append(f"item {n}: {key} is not an RFC 3339 date: {item[key]!r}")
        tags = item.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            problems.append(f"item {n}: tags is not an array of strings")
    return problems


def test_the_json_feed_check_finds_broken_feeds() -> None:
    assert json_feed_problems([]) == ["the top level is not an object"]
    broken = {
        "version": "https://jsonfeed.org/version/1",
        "items": [{"id": 1, "date_published": "yesterday", "tags": "x"}, {"id": "1"}],
    }
    assert json_feed_problems(broken) == [
        "version is 'https://jsonfeed.org/version/1'",
        "title is required",
        "items are not objects with distinct ids",
        "item 0: id is required, a string",
        "item 0: content_html or content_text is required",
        "item 0: date_published is not an RFC 3339 date: 'yesterday'",
        "item 0: tags is not an array of strings",
        "item 1: content_html or content_text is required",
    ]


@pytest.mark.parametrize("site", SITES)
def test_json_feeds_follow_the_spec_and_agree(
    sites: dict[str, dict[str, bytes]], site: str
) -> None:
    files = sites[site]
    for path, data in feeds(files, JSON_FEED).items():
        feed = json.loads(data)
        assert not json_feed_problems(feed), (path, json_feed_problems(feed))
        theirs = fastfeedparser.parse(data)
        items = feed["items"]
        assert [i["title"] for i in items] == [e.get("title") for e in theirs.entries], path
        assert [i["url"] for i in items] == [e.get("link") for e in theirs.entries], path
        assert [story_path(i["url"]) for i in items] == listed(files, path), path
        atom = feedparser.parse(files[path.replace(JSON_FEED, "atom.xml")])
        assert [i["id"] for i in items] == [e.id for e in atom.entries], path  # the same GUIDs
        for item in items:
            assert_inert_html(item["content_html"])


def test_hostile_text_is_text_in_every_feed(sites: dict[str, dict[str, bytes]]) -> None:
    """Markup in a headline reaches every reader of every feed as the words, never as markup."""
    files = sites["hostile"]
    for name in XML_FEEDS:
        for path, data in feeds(files, name).items():
            if path.startswith("day/"):  # finished days only: tests/test_edition.py has one
                continue
            for parsed in (feedparser.parse(data), fastfeedparser.parse(data)):
                (entry,) = parsed.entries
                assert entry.get("title") == "<script>alert(1)</script>", path
                text = lxml.html.fromstring(content_of(entry)).text_content()
                assert "]]> here </script><script>alert(2)</script>" in text, path
                assert '<a href="javascript:alert(5)">' in text, path
    for path, data in feeds(files, JSON_FEED).items():
        if path.startswith("day/"):
            continue
        assert not CONTROL.search(data.decode()), path  # not even escaped as \u0000
        (item,) = json.loads(data)["items"]
        assert item["title"] == "<script>alert(1)</script>", path
        text = lxml.html.fromstring(item["content_html"]).text_content()
        assert "<img src=x onerror=alert(4)>" in text, path
