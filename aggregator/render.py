"""Render ranked stories into a static site (pages and feeds) and publish it atomically.

``build_site`` is pure: records in, ``{relative path: bytes}`` out. ``publish`` is the only part
that touches the disk. Every string from a record is untrusted: templates autoescape, feed HTML
goes through an nh3 allowlist, and characters XML cannot carry are stripped before rendering.
"""

from __future__ import annotations

import dataclasses
import email.utils
import glob
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import jinja2
import nh3

from aggregator import PROJECT_URL, __version__
from aggregator.config import Settings
from aggregator.dedupe import originals
from aggregator.rank import explain
from aggregator.records import Article, Story, Summary

log = logging.getLogger("aggregator.render")

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"
INDEX_SOURCES = 6  # sources listed per story on the discover page; the story page lists all
FEED_SOURCES = 20  # sources listed in a feed entry's content
MAX_NAME = 64  # longest story file name (without ".html")
STALE_SECONDS = 3600  # leftovers of a crashed publish older than this are removed

# XML 1.0 forbids these code points outright (C0 controls, lone surrogates, U+FFFE/F); C1 controls
# are legal but no reader wants them, so they go too.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_SAFE_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# What feed content may contain: our own paragraphs, citation links and source lists.
_FEED_TAGS = {"p", "a", "ol", "ul", "li", "sup", "small", "br"}
_FEED_ATTRIBUTES = {"a": {"href", "title"}}


def clean_text(text: str) -> str:
    """Drop characters that XML cannot carry (NUL, control characters, lone surrogates)."""
    return _ILLEGAL_XML.sub("", text)


def safe_url(url: str) -> str:
    """The URL if it is an absolute http(s) URL, else "" (no javascript:, data:, relative...)."""
    url = clean_text(url).strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        return ""
    if any(ch.isspace() for ch in url):
        return ""  # whitespace inside a URL is a smuggling trick, never a real link
    return url


def safe_name(story_id: str) -> str:
    """A file name for a story: only [a-z0-9-], capped, and distinct for distinct ids."""
    if _SAFE_NAME.fullmatch(story_id) and len(story_id) <= MAX_NAME:
        return story_id
    slug = re.sub(r"[^a-z0-9]+", "-", story_id.lower()).strip("-")[: MAX_NAME - 13].strip("-")
    # The hash keeps two hostile ids that slugify alike ("a/b", "a-b") from sharing a page.
    digest = hashlib.sha256(story_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{slug}-{digest}" if slug else digest


# A story whose newest article came this long after its first shows a "What's new" line, so a
# reader (and a feed subscriber, whose entry is updated in place) sees what changed.
WHATS_NEW_AFTER = timedelta(hours=6)

# ---------------------------------------------------------------------------------------------
# View models: everything a template needs, already cleaned.


@dataclass(frozen=True)
class TimeView:
    """One instant in every shape the templates print."""

    iso: str  # RFC 3339, UTC: 2025-03-14T09:30:00Z
    rfc822: str  # for RSS: Fri, 14 Mar 2025 09:30:00 GMT
    text: str  # for people: Fri 14 Mar 2025, 09:30 UTC
    ago: str  # relative to the render time: "3 h ago"


@dataclass(frozen=True)
class SourceView:
    """A member article, numbered as the citation markers number it."""

    number: int
    title: str
    url: str  # "" when the article's URL is not http(s): printed without a link
    source_name: str
    time: TimeView | None
    also: tuple[str, ...] = ()  # outlets that ran a copy of this article


@dataclass(frozen=True)
class SentenceView:
    text: str
    markers: tuple[SourceView, ...]  # the cited sources, in citation order


@dataclass(frozen=True)
class StoryView:
    name: str  # safe file name
    path: str  # "stories/<name>.html", relative to the site root
    url: str  # absolute URL of the story page; also the feeds' stable GUID
    headline: str
    sentences: tuple[SentenceView, ...]
    sources: tuple[SourceView, ...]
    category: str
    explanation: str
    first_seen: TimeView
    updated: TimeView
    content_html: str = ""  # nh3-sanitised HTML for the feeds
    whats_new: SourceView | None = None  # the newest article of a story that has developed


@dataclass(frozen=True)
class SiteView:
    title: str
    description: str
    language: str
    url: str  # site_url with a trailing slash
    window: str  # "24 hours"


def _utc(dt: datetime) -> datetime:
    """Aware UTC; naive datetimes are taken to be UTC already."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _ago(dt: datetime, now: datetime) -> str:
    seconds = (now - dt).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


def time_view(dt: datetime, now: datetime) -> TimeView:
    """Format an instant; month and day names are fixed English so output is locale-proof."""
    dt, now = _utc(dt).replace(microsecond=0), _utc(now)
    text = f"{_DAYS[dt.weekday()]} {dt.day} {_MONTHS[dt.month - 1]} {dt.year}, {dt:%H:%M} UTC"
    return TimeView(
        iso=dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        rfc822=email.utils.format_datetime(dt, usegmt=True),
        text=text,
        ago=_ago(dt, now),
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _explain(story: Story, sources: Sequence[SourceView], now: datetime) -> str:
    """Why the story ranks where it does: "5 sources, first seen 3 h ago".

    Uses the parts the ranker kept (``sources``, ``age_hours``), falling back to the members.
    """
    parts = story.score_parts
    if "sources" in parts and "age_hours" in parts:
        return explain(story)  # the ranker's own words
    count = int(parts.get("sources", len({s.source_name for s in sources})))
    line = _plural(count, "source")
    now = _utc(now)
    age_hours = parts.get("age_hours")
    if age_hours is not None and math.isfinite(age_hours) and 0 <= age_hours < 1e6:
        line += f", first seen {_ago(now - timedelta(hours=age_hours), now)}"
    elif story.first_seen is not None:
        line += f", first seen {_ago(_utc(story.first_seen), now)}"
    return line


def _article_time(article: Article) -> datetime | None:
    return article.published or article.fetched_at


def _sources(story: Story, articles: Mapping[str, Article], now: datetime) -> dict[str, SourceView]:
    """Member articles by id, in story order, numbered 1..n; members we lack are skipped.

    A copy (syndicated or under a second URL) maps to its original's view, which names the
    outlets that also ran it.
    """
    members = [articles[a] for a in dict.fromkeys(story.article_ids) if a in articles]
    original = originals(members)
    also: dict[str, list[str]] = {}
    for article in members:
        first = original[article.id]
        if first.id != article.id:
            also.setdefault(first.id, []).append(_source_name(article))
    views: dict[str, SourceView] = {}
    for article in members:
        if original[article.id].id != article.id:
            continue
        when = _article_time(article)
        views[article.id] = SourceView(
            number=len(views) + 1,
            title=clean_text(article.title).strip() or safe_url(article.url) or "Untitled",
            url=safe_url(article.url),
            source_name=_source_name(article),
            time=time_view(when, now) if when is not None else None,
            also=tuple(dict.fromkeys(also.get(article.id, []))),
        )
    for article in members:
        views.setdefault(article.id, views[original[article.id].id])
    return views


def _source_name(article: Article) -> str:
    return clean_text(article.source_name).strip() or clean_text(article.source_id)


def _sentences(summary: Summary | None, by_id: Mapping[str, SourceView]) -> list[SentenceView]:
    """Summary sentences with their citations resolved to numbered sources."""
    if summary is None:
        return []
    sentences = []
    for sentence in summary.sentences:
        text = clean_text(sentence.text).strip()
        if not text:
            continue
        cited = dict.fromkeys(by_id[c] for c in sentence.citations if c in by_id)
        sentences.append(SentenceView(text=text, markers=tuple(cited)))
    return sentences


def _headline(story: Story, summary: Summary | None, sources: Sequence[SourceView]) -> str:
    for candidate in (summary.headline if summary else "", story.title):
        text = clean_text(candidate).strip()
        if text:
            return text
    return sources[0].title if sources else "Untitled story"


def _story_view(
    story: Story,
    summary: Summary | None,
    articles: Mapping[str, Article],
    site: SiteView,
    now: datetime,
) -> StoryView:
    by_id = _sources(story, articles, now)
    sources = list(dict.fromkeys(by_id.values()))
    times = [t for t in (_article_time(articles[a]) for a in by_id) if t is not None]
    first_seen = story.first_seen or (min(times) if times else now)
    updated = story.updated or (max(times) if times else first_seen)
    name = safe_name(story.id)
    category = story.category or next((articles[a].category for a in by_id), "")
    return StoryView(
        name=name,
        path=f"stories/{name}.html",
        url=f"{site.url}stories/{name}.html",
        headline=_headline(story, summary, sources),
        sentences=tuple(_sentences(summary, by_id)),
        sources=tuple(sources),
        category=clean_text(category).strip(),
        explanation=clean_text(_explain(story, sources, now)),
        first_seen=time_view(first_seen, now),
        updated=time_view(updated, now),
        whats_new=whats_new(sources, first_seen),
    )


def whats_new(sources: Sequence[SourceView], first_seen: datetime) -> SourceView | None:
    """The newest member, when it came WHATS_NEW_AFTER or more after the story began."""
    dated = [s for s in sources if s.time is not None]
    if len(sources) < 2 or not dated:
        return None
    newest = max(dated, key=lambda s: (s.time.iso if s.time else "", s.number))
    assert newest.time is not None
    began = _utc(first_seen)
    arrived = datetime.fromisoformat(newest.time.iso.replace("Z", "+00:00"))
    return newest if arrived - began >= WHATS_NEW_AFTER else None


def _site_view(settings: Settings) -> SiteView:
    url = clean_text(settings.site_url).strip()
    hours = settings.window_hours
    return SiteView(
        title=clean_text(settings.title),
        description=clean_text(settings.description),
        language=clean_text(settings.language).strip() or "en",
        url=url if url.endswith("/") else url + "/",
        window=_plural(int(hours), "hour") if hours == int(hours) else f"{hours:g} hours",
    )


# ---------------------------------------------------------------------------------------------
# Rendering.


@lru_cache(maxsize=8)
def _environment(templates_dir: Path) -> jinja2.Environment:
    # Autoescape everything, XML included; StrictUndefined turns a template typo into an error
    # (and so into a failed publish that leaves the previous site live) instead of blank output.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


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


def _with_content(env: jinja2.Environment, story: StoryView) -> StoryView:
    html = env.get_template("content.html").render(story=story, feed_sources=FEED_SOURCES)
    return dataclasses.replace(story, content_html=_sanitise(html.strip()))


def _json_feed(site: SiteView, stories: Sequence[StoryView]) -> str:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
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
        "title": site.title,
        "home_page_url": site.url,
        "feed_url": f"{site.url}feed.json",
        "description": site.description,
        "language": site.language,
        "items": items,
    }
    return json.dumps(feed, ensure_ascii=False, indent=2) + "\n"


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
) -> dict[str, bytes]:
    """Render the discover page, one page per story, RSS, Atom and JSON feeds: path -> bytes.

    ``stories`` are already ranked; the first ``settings.max_stories`` are rendered in order.
    """
    env = _environment((templates_dir or TEMPLATES_DIR).resolve())
    site = _site_view(settings)
    views: dict[str, StoryView] = {}
    for story in stories:
        if len(views) >= settings.max_stories:
            break
        view = _story_view(story, summaries.get(story.id), articles, site, now)
        views.setdefault(view.name, _with_content(env, view))  # a repeated id renders once
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
        "feed.json": _json_feed(site, page),
        "style.css": env.get_template("style.css").render(),
    }
    story_template = env.get_template("story.html")
    for view in page:
        files[view.path] = story_template.render(context, story=view, root="../")
    return {path: _encode(text) for path, text in files.items()}


# ---------------------------------------------------------------------------------------------
# Publishing.


def _relative(name: str) -> PurePosixPath:
    """A validated relative path inside the site; anything that could escape it is refused."""
    path = PurePosixPath(name)
    bad = (
        not name
        or "\\" in name
        or "\x00" in name
        or path.is_absolute()
        or any(part in {"", ".", ".."} for part in name.split("/"))
    )
    if bad:
        raise ValueError(f"refusing to publish {name!r}: not a plain path inside the site")
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_tree(files: Mapping[str, bytes], root: Path) -> None:
    """Write every file under root, each fsynced, then fsync the directories."""
    dirs = {root}
    for name, data in files.items():
        target = root.joinpath(*_relative(name).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        dirs.add(target.parent)
        with open(target, "xb") as handle:  # "x": two names for one file is an error
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    for directory in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        _fsync_dir(directory)


def _remove_stale(parent: Path, name: str) -> None:
    """Remove what a killed publish left behind (older than an hour, so never a live one)."""
    cutoff = time.time() - STALE_SECONDS
    for pattern in (f".{glob.escape(name)}.new-*", f".{glob.escape(name)}.old-*"):
        for leftover in parent.glob(pattern):
            try:
                stale = leftover.stat(follow_symlinks=False).st_mtime < cutoff
                if stale and leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover)
            except OSError as exc:
                log.warning("could not remove leftover %s: %s", leftover, exc)


def publish(files: Mapping[str, bytes], out_dir: Path) -> Path:
    """Write files into a fresh directory beside out_dir, then swap it in; return out_dir.

    On any error the previous site stays live and the half-built directory is removed. Between
    the two renames of the swap out_dir is briefly absent; it is never half-written.
    """
    target = Path(out_dir).resolve()  # through symlinks, so the renames stay on one filesystem
    if not target.name:
        raise ValueError(f"refusing to publish into {out_dir}: not a directory name")
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"cannot publish into {target}: it exists and is not a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(target.parent, target.name)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it 0700; a web server must be able to read the site
        _write_tree(files, staging)
        _swap(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _swap(staging: Path, target: Path) -> None:
    """Put staging where target is: old aside, new in place, old removed."""
    if not target.exists():
        os.rename(staging, target)
        _fsync_dir(target.parent)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rename(target, old / "site")
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old / "site", target)  # put the previous site back before reporting
        old.rmdir()
        raise
    _fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)
    if old.exists():
        log.warning("published %s but could not remove the previous site at %s", target, old)


def render_site(
    stories: Sequence[Story],
    summaries: Mapping[str, Summary],
    articles: Mapping[str, Article],
    settings: Settings,
    out_dir: Path,
    now: datetime,
    *,
    templates_dir: Path | None = None,
) -> Path:
    """Build the site and publish it atomically to out_dir."""
    site = build_site(stories, summaries, articles, settings, now, templates_dir=templates_dir)
    return publish(site, out_dir)
