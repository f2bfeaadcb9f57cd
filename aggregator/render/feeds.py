"""The feeds' content: each story's HTML through an nh3 allowlist, and JSON Feed 1.1."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence

import jinja2
import nh3

from aggregator.render.strings import ENGLISH
from aggregator.render.views import SiteView, StoryView

FEED_SOURCES = 20  # sources listed in a feed entry's content

# What feed content may contain: our own paragraphs, citation links and source lists.
_FEED_TAGS = {"p", "a", "ol", "ul", "li", "sup", "small", "br"}
_FEED_ATTRIBUTES = {"a": {"href", "title"}}


def _sanitise(html: str) -> str:
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
    return dataclasses.replace(story, content_html=_sanitise(html.strip()))


def json_feed(site: SiteView, stories: Sequence[StoryView], base: str = "", title: str = "") -> str:
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
