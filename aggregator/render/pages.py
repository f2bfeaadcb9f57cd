"""Ranked stories -> the static site: the discover page, a page per story, RSS, Atom, JSON Feed,
and a page with the same three feeds per channel (the sources' categories).

``build_site`` is pure: records in, ``{relative path: bytes}`` out; ``render_site`` publishes it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import jinja2

from aggregator import PROJECT_URL, __version__
from aggregator.records import Article, Story, Summary
from aggregator.render.coverage import page_extras
from aggregator.render.feeds import json_feed, with_feed_content
from aggregator.render.publish import publish
from aggregator.render.views import (
    ChannelView,
    SiteView,
    StoryView,
    TimeView,
    channel_view,
    clean_text,
    safe_name,
    site_view,
    story_view,
    strings_for,
    summaries_line,
    time_view,
)
from aggregator.resources import shipped_dir, template_dirs
from aggregator.settings import Settings

TEMPLATES_DIR = shipped_dir("templates")
LEAD_STORIES = 3  # the first stories of a page are shown larger


# ---------------------------------------------------------------------------------------------
# Rendering.


@lru_cache(maxsize=8)
def _environment(search_path: tuple[Path, ...]) -> jinja2.Environment:
    # Autoescape everything, XML included; StrictUndefined turns a template typo into an error
    # (and so into a failed publish that leaves the previous site live) instead of blank output.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(search_path),  # the first folder holding a name wins
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _encode(text: str) -> bytes:
    # A last sweep: nothing that slipped past the view models may break a parser downstream.
    return clean_text(text).encode("utf-8")


def build_site(
    stories: Sequence[Story],
    summaries: Mapping[str, Summary],
    articles: Mapping[str, Article],
    settings: Settings,
    now: datetime,
    *,
    templates_dir: Path | None = None,
    redirects: Mapping[str, str] | None = None,
    categories: Sequence[str] = (),
    channel_stories: Sequence[Story] = (),
) -> dict[str, bytes]:
    """Render the discover page, one page per story, RSS, Atom and JSON feeds: path -> bytes.

    ``stories`` are already ranked; the first ``settings.max_stories`` are rendered in order.
    Each category (of ``categories``, the sources', and of those stories) gets a channel under
    ``category/<slug>/``: a page and three feeds of its stories among them, then of its
    ``channel_stories`` (hot stories below the page, in rank order), each with its story page;
    a category without stories today keeps its page and feeds, empty.
    ``redirects`` (merged story id -> the id of the story that absorbed it) get a page that
    sends readers on to the survivor's, when the survivor is on the page. Templates in
    ``templates_dir`` (an editor's folder) take the place of the shipped ones of the same name.
    """
    env = _environment(template_dirs(templates_dir))
    strings = strings_for(settings)
    site = site_view(settings, strings)
    page: dict[str, StoryView] = {}
    story_ids: dict[str, str] = {}  # view name -> story id
    for story in stories:
        if len(page) >= settings.max_stories:
            break
        view = story_view(story, summaries.get(story.id), articles, site, now, strings)
        story_ids.setdefault(view.name, story.id)
        page.setdefault(
            view.name, with_feed_content(env, view, strings)
        )  # a repeated id renders once
    below: dict[str, StoryView] = {}  # stories only the channels list
    for story in channel_stories:
        view = story_view(story, summaries.get(story.id), articles, site, now, strings)
        story_ids.setdefault(view.name, story.id)
        if view.category_slug and view.name not in page:
            below.setdefault(view.name, with_feed_content(env, view, strings))
    shelves: dict[str, list[StoryView]] = {}  # channel slug -> its stories, in rank order
    for view in [*page.values(), *below.values()]:
        shelf = shelves.setdefault(view.category_slug, [])
        if view.category_slug and len(shelf) < settings.max_stories:
            shelf.append(view)
    listed = {v.name: v for shelf in shelves.values() for v in shelf}
    channels = _channels([*categories, *(s.category for s in listed.values())], site)
    context = {
        "site": site,
        "t": strings,
        "channels": channels,
        "channel": None,
        "feed": {"base": site.url, "title": site.title},
        "generated": time_view(now, now, strings),
        "lead_stories": LEAD_STORIES,
        "version": __version__,
        "project_url": PROJECT_URL,
        # who wrote the summaries readers see: the footer's "Summaries: 5 by MODEL, 2 extractive."
        "summaries_line": summaries_line(
            (summaries[i] for i in (story_ids[n] for n in {**page, **listed}) if i in summaries),
            strings,
        ),
    }
    files = _listing(env, context, list(page.values()), None, now)
    for channel in channels:
        shelf = shelves.get(channel.slug, [])
        for name, text in _listing(env, context, shelf, channel, now).items():
            files[channel.path + name] = text
    files["style.css"] = env.get_template("style.css").render()
    story_template = env.get_template("story.html")
    rendered = {**page, **listed}
    extras = page_extras(rendered)
    for view in rendered.values():
        files[view.path] = story_template.render(
            context, story=view, extras=extras[view.name], root="../"
        )
    redirect_template = env.get_template("redirect.html")
    for old, new in sorted((redirects or {}).items()):
        target = page.get(safe_name(new))
        path = f"stories/{safe_name(old)}.html"
        if target is not None and path not in files:  # a live story's page is never replaced
            files[path] = redirect_template.render(context, story=target, root="../")
    return {path: _encode(text) for path, text in files.items()}


def _channels(categories: Sequence[str], site: SiteView) -> list[ChannelView]:
    """One channel per distinct slug, in alphabetical order; the first spelling names it."""
    named: dict[str, ChannelView] = {}
    for category in categories:
        if clean_text(category).strip():
            view = channel_view(clean_text(category), site)
            named.setdefault(view.slug, view)
    return sorted(named.values(), key=lambda c: (c.name.lower(), c.slug))


def _listing(
    env: jinja2.Environment,
    context: Mapping[str, object],
    stories: list[StoryView],
    channel: ChannelView | None,
    now: datetime,
) -> dict[str, str]:
    """A page of stories and its three feeds, for the whole site or for one channel."""
    site = context["site"]
    assert isinstance(site, SiteView)
    updated: TimeView | None = max((s.updated for s in stories), key=lambda t: t.iso, default=None)
    feed = {
        "base": channel.url if channel else site.url,  # where the feeds and the page live
        "title": f"{site.title} · {channel.name}" if channel else site.title,
    }
    local = {
        **context,
        "stories": stories,
        "channel": channel,
        "feed": feed,
        "feed_updated": updated or time_view(now, now),
        "root": "../../" if channel else "",
    }
    return {
        "index.html": env.get_template("index.html").render(local),
        "feed.xml": env.get_template("rss.xml").render(local),
        "atom.xml": env.get_template("atom.xml").render(local),
        "feed.json": json_feed(site, stories, feed["base"], feed["title"]),
    }


def render_site(
    stories: Sequence[Story],
    summaries: Mapping[str, Summary],
    articles: Mapping[str, Article],
    settings: Settings,
    out_dir: Path,
    now: datetime,
    *,
    templates_dir: Path | None = None,
    redirects: Mapping[str, str] | None = None,
    categories: Sequence[str] = (),
    channel_stories: Sequence[Story] = (),
) -> Path:
    """Build the site and publish it atomically to out_dir."""
    site = build_site(
        stories,
        summaries,
        articles,
        settings,
        now,
        templates_dir=templates_dir,
        redirects=redirects,
        categories=categories,
        channel_stories=channel_stories,
    )
    return publish(site, out_dir)
