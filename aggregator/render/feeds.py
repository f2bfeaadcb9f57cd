"""The feeds' content: each story's HTML through an nh3 allowlist, JSON Feed 1.1, and the OPML
list of the site's feeds."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

import jinja2
import nh3

from aggregator.render.strings import ENGLISH
from aggregator.render.views import ChannelView, SiteView, StoryView, TimeView
from aggregator.sources.opml import ExportFeed, write_opml

FEED_SOURCES = 20  # sources listed in a feed entry's content

# What feed content may contain: our own paragraphs, citation links and source lists.
_FEED_TAGS = {"p", "a", "ol", "ul", "li", "sup", "small", "br"}
_FEED_ATTRIBUTES = {"a": {"href", "title"}}


def sanitise(html: str) -> str:
    """The feed-content allowlist: a few tags, http(s) links only, no comments."""
    return nh3.clean(
        html,
        tags=_FEED_TAGS,
        attributes=_FEED_ATTRIBUTES,
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def with_feed_content(
    env: jinja2.Environment, story: StoryView, strings: Mapping[str, str] = ENGLISH
) -> StoryView:
    html = env.get_template("content.html").render(
        story=story, feed_sources=FEED_SOURCES, t=strings
    )
    return dataclasses.replace(story, content_html=sanitise(html.strip()))


class FeedEntry(Protocol):
    """What a feed entry reads: a story, or a day of the daily edition."""

    @property
    def url(self) -> str: ...
    @property
    def headline(self) -> str: ...
    @property
    def content_html(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def first_seen(self) -> TimeView: ...
    @property
    def updated(self) -> TimeView: ...


def json_feed(site: SiteView, stories: Sequence[FeedEntry], base: str = "", title: str = "") -> str:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1) of the page at ``base`` (the site's by
    default), whose ``feed.json`` it is."""
    base = base or site.url
    items = []
    for story in stories:
        item: dict[str, object] = {
            "id": story.url,
            "url": story.url,
            "title": story.headline,
            "content_html": story.content_html,
            "date_published": story.first_seen.iso,
            "date_modified": story.updated.iso,
        }
        if story.category:
            item["tags"] = [story.category]
        items.append(item)
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": title or site.title,
        "home_page_url": base,
        "feed_url": f"{base}feed.json",
        "description": site.description,
        "language": site.language,
        "items": items,
    }
    return json.dumps(feed, ensure_ascii=False, indent=2) + "\n"


def opml(
    site: SiteView, channels: Sequence[ChannelView], strings: Mapping[str, str], now: datetime
) -> str:
    """OPML 2.0 listing the site's feeds: the whole site's, the daily digest's, then each
    channel's (in a folder), each as RSS."""
    digest = strings["digest_title"] % {"site": site.title}
    feeds = [
        ExportFeed(url=f"{site.url}feed.xml", name=site.title, language=site.language),
        ExportFeed(url=f"{site.url}day/feed.xml", name=digest, language=site.language),
        *(
            ExportFeed(
                url=f"{channel.url}feed.xml",
                name=f"{site.title} · {channel.name}",
                category=strings["channels"],
                language=site.language,
            )
            for channel in channels
        ),
    ]
    return write_opml(feeds, title=site.title, now=now).decode("utf-8")
