"""Ranked stories -> the static site: the discover page, a page per story, RSS, Atom, JSON Feed.

``build_site`` is pure: records in, ``{relative path: bytes}`` out; ``render_site`` publishes it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import jinja2

from aggregator import PROJECT_URL, __version__
from aggregator.records import Article, Story, Summary
from aggregator.render.feeds import json_feed, with_feed_content
from aggregator.render.publish import publish
from aggregator.render.views import (
    StoryView,
    clean_text,
    safe_name,
    site_view,
    story_view,
    time_view,
)
from aggregator.resources import shipped_dir, template_dirs
from aggregator.settings import Settings

TEMPLATES_DIR = shipped_dir("templates")
INDEX_SOURCES = 6  # sources listed per story on the discover page; the story page lists all


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
) -> dict[str, bytes]:
    """Render the discover page, one page per story, RSS, Atom and JSON feeds: path -> bytes.

    ``stories`` are already ranked; the first ``settings.max_stories`` are rendered in order.
    ``redirects`` (merged story id -> the id of the story that absorbed it) get a page that
    sends readers on to the survivor's, when the survivor is on the page. Templates in
    ``templates_dir`` (an editor's folder) take the place of the shipped ones of the same name.
    """
    env = _environment(template_dirs(templates_dir))
    site = site_view(settings)
    views: dict[str, StoryView] = {}
    for story in stories:
        if len(views) >= settings.max_stories:
            break
        view = story_view(story, summaries.get(story.id), articles, site, now)
        views.setdefault(view.name, with_feed_content(env, view))  # a repeated id renders once
    page = list(views.values())
    feed_updated = max((s.updated for s in page), key=lambda t: t.iso, default=None)
    context = {
        "site": site,
        "stories": page,
        "generated": time_view(now, now),
        "feed_updated": feed_updated or time_view(now, now),
        "index_sources": INDEX_SOURCES,
        "version": __version__,
        "project_url": PROJECT_URL,
    }
    files = {
        "index.html": env.get_template("index.html").render(context, root=""),
        "feed.xml": env.get_template("rss.xml").render(context),
        "atom.xml": env.get_template("atom.xml").render(context),
        "feed.json": json_feed(site, page),
        "style.css": env.get_template("style.css").render(),
    }
    story_template = env.get_template("story.html")
    for view in page:
        files[view.path] = story_template.render(context, story=view, root="../")
    redirect_template = env.get_template("redirect.html")
    for old, new in sorted((redirects or {}).items()):
        target = views.get(safe_name(new))
        path = f"stories/{safe_name(old)}.html"
        if target is not None and path not in files:  # a live story's page is never replaced
            files[path] = redirect_template.render(context, story=target, root="../")
    return {path: _encode(text) for path, text in files.items()}


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
    )
    return publish(site, out_dir)
