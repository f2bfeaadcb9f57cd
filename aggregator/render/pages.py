"""Ranked stories -> the static site: the discover page, a page per story, RSS, Atom, JSON Feed,
a page with the same three feeds per channel (the sources' categories), the daily edition (a page
per day, an index of days, a daily-digest feed), an OPML list of the feeds, the stories' lead
images and, when the Pagefind binary is there, a search index.

``build_site`` is pure: records in, ``{relative path: bytes}`` out; ``render_site`` publishes it."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import jinja2

from aggregator import PROJECT_URL, __version__
from aggregator.records import Article, Edition, Story, Summary
from aggregator.render.coverage import page_extras
from aggregator.render.edition import (
    DIGEST_DAYS,
    EditionView,
    day_link,
    edition_of,
    lead_image,
    merged_editions,
)
from aggregator.render.feeds import json_feed, opml, sanitise, with_feed_content
from aggregator.render.images import Thumbnail
from aggregator.render.publish import publish
from aggregator.render.search import SEARCH_SCRIPT, build_index, search_binary
from aggregator.render.views import (
    ChannelView,
    ImageView,
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

log = logging.getLogger(__name__)

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
    editions: Sequence[Edition] = (),
    images: Mapping[str, Thumbnail] | None = None,
    search: bool = False,
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

    The daily edition: today's (settings.timezone) is this page's stories; ``editions`` are the
    stored days (Storage.editions), each rendered as it was published, and each of their
    stories keeps its page (an archive), whose articles ``articles`` must hold. ``images`` maps
    a lead image's URL to its thumbnail (images.thumbnails); a story whose image has none shows
    none. ``search`` adds the search box's script (the Pagefind index is built on publishing).
    """
    env = _environment(template_dirs(templates_dir))
    strings = strings_for(settings)
    site = site_view(settings, strings)
    thumbs = images or {}

    def view_of(story: Story, summary: Summary | None, image: str = "") -> StoryView:
        view = story_view(story, summary, articles, site, now, strings)
        found = _image(image or lead_image(story, articles), story, articles, thumbs)
        return with_feed_content(env, dataclasses.replace(view, image=found), strings)

    page: dict[str, StoryView] = {}
    story_ids: dict[str, str] = {}  # view name -> story id
    shown: list[Story] = []
    for story in stories:
        if len(page) >= settings.max_stories:
            break
        if safe_name(story.id) not in page:  # a repeated id renders once
            page[safe_name(story.id)] = view_of(story, summaries.get(story.id))
            story_ids[safe_name(story.id)] = story.id
            shown.append(story)
    below: dict[str, StoryView] = {}  # stories only the channels list
    for story in channel_stories:
        view = view_of(story, summaries.get(story.id))
        story_ids.setdefault(view.name, story.id)
        if view.category_slug and view.name not in page:
            below.setdefault(view.name, view)
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
        "search_script": SEARCH_SCRIPT if search else "",
    }
    files = _listing(env, context, list(page.values()), None, now)
    for channel in channels:
        shelf = shelves.get(channel.slug, [])
        for name, text in _listing(env, context, shelf, channel, now).items():
            files[channel.path + name] = text
    files["style.css"] = env.get_template("style.css").render()
    files["favicon.svg"] = env.get_template("favicon.svg").render()
    today = edition_of(shown, summaries, articles, now, settings.timezone)
    days = merged_editions(editions, today)
    archive: dict[str, StoryView] = {}  # stories of past days: their pages stay
    day_views = []
    for edition in days:
        views = []
        for entry in edition.stories:
            current = page.get(safe_name(entry.story.id))
            view = (
                current
                if edition is today and current
                else view_of(entry.story, entry.summary, entry.image)
            )
            views.append(view)
            archive[view.name] = view  # a later day's snapshot wins
        day_views.append((edition, views))
    files.update(_edition_files(env, context, day_views, today, now))
    files["feeds.opml"] = opml(site, channels, strings, now)
    if search:
        files[SEARCH_SCRIPT] = env.get_template(SEARCH_SCRIPT).render()
    story_template = env.get_template("story.html")
    rendered = {**archive, **page, **listed}
    extras = page_extras({**page, **listed, **archive})  # live stories first, then past days'
    for view in rendered.values():
        files[view.path] = story_template.render(
            context, story=view, extras=extras[view.name], root="../"
        )
    redirect_template = env.get_template("redirect.html")
    live_paths = {view.path for view in {**page, **listed}.values()}
    for old, new in sorted((redirects or {}).items()):
        target = page.get(safe_name(new))
        path = f"stories/{safe_name(old)}.html"
        # a live story's page is never replaced; a past day's story that merged into a live one
        # sends its readers on to where it continues
        if target is not None and path not in live_paths:
            files[path] = redirect_template.render(context, story=target, root="../")
    out = {path: _encode(text) for path, text in files.items()}
    by_name = {f"images/{t.name}": t.data for t in thumbs.values()}
    for view in {**archive, **page, **listed}.values():
        if view.image is not None:
            out[view.image.path] = by_name[view.image.path]
    return out


def _image(
    url: str, story: Story, articles: Mapping[str, Article], thumbs: Mapping[str, Thumbnail]
) -> ImageView | None:
    """The lead image's view when its thumbnail was made; alt: the title of its article."""
    made = thumbs.get(url) if url else None
    if made is None:
        return None
    owner = next(
        (articles[a] for a in story.article_ids if a in articles and articles[a].image == url),
        None,
    )
    alt = clean_text(owner.title if owner else story.title).strip() or "Lead image"
    return ImageView(f"images/{made.name}", alt, made.width, made.height)


def _edition_files(
    env: jinja2.Environment,
    context: Mapping[str, object],
    days: list[tuple[Edition, list[StoryView]]],
    today: Edition,
    now: datetime,
) -> dict[str, str]:
    """A page per day, the index of days and the daily-digest feeds (finished days only: a
    reader wanting one notification a day gets each day once, when it is over)."""
    site = context["site"]
    strings = context["t"]
    assert isinstance(site, SiteView) and isinstance(strings, Mapping)
    links = [day_link(edition.day, strings) for edition, _ in days]
    views: list[EditionView] = []
    content = env.get_template("edition_content.html")
    for index, (edition, stories) in enumerate(days):
        view = EditionView(
            link=links[index],
            url=f"{site.url}day/{links[index].day}/index.html",
            published=time_view(edition.published, now, strings),
            final=edition.day < today.day,
            stories=tuple(stories),
            previous=links[index - 1] if index > 0 else None,
            next=links[index + 1] if index + 1 < len(links) else None,
            headline=strings["digest_entry"] % {"day": links[index].label},
        )
        html = content.render(edition=view, t=strings)
        views.append(dataclasses.replace(view, content_html=sanitise(html.strip())))
    feed = {
        "base": f"{site.url}day/",
        "title": strings["digest_title"] % {"site": site.title},
    }
    local = {**context, "feed": feed, "channel": None}
    files: dict[str, str] = {}
    day_template = env.get_template("day.html")
    for view in views:
        files[view.link.path] = day_template.render(local, edition=view, root="../../")
    newest = list(reversed(views))
    files["day/index.html"] = env.get_template("days.html").render(
        local, editions=newest, root="../"
    )
    digest = [v for v in newest if v.final][:DIGEST_DAYS]
    updated = digest[0].published if digest else time_view(now, now)
    feeds = {**local, "stories": digest, "feed_updated": updated, "root": "../"}
    files["day/feed.xml"] = env.get_template("rss.xml").render(feeds)
    files["day/atom.xml"] = env.get_template("atom.xml").render(feeds)
    files["day/feed.json"] = json_feed(site, digest, feed["base"], feed["title"])
    return files


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
    editions: Sequence[Edition] = (),
    images: Mapping[str, Thumbnail] | None = None,
    search: bool = True,
) -> Path:
    """Build the site and publish it atomically to out_dir; with ``search``, Pagefind indexes
    the story pages in the new release before it goes live. Without the Pagefind binary the
    site is published without search, and one warning says so."""
    binary = search_binary() if search else None
    if search and binary is None:
        log.warning(
            "site search left out: the Pagefind binary was not found "
            "(pip install 'pagefind[extended]', or set PAGEFIND_BINARY_PATH)"
        )
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
        editions=editions,
        images=images,
        search=binary is not None,
    )
    prepare = None if binary is None else (lambda release: build_index(binary, release))
    return publish(site, out_dir, prepare=prepare)
