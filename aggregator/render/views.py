"""View models: everything a template needs of a story, already cleaned.

Every string from a record is untrusted: characters XML cannot carry are stripped here, templates
autoescape, and only http(s) links survive."""

from __future__ import annotations

import email.utils
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.cluster.dedupe import originals
from aggregator.rank import explain
from aggregator.records import Article, Story, Summary
from aggregator.settings import Settings
from aggregator.times import ago, as_utc, hours_between
from aggregator.urls import http_url

MAX_NAME = 64  # longest story file name (without ".html")

# XML 1.0 forbids these code points outright (C0 controls, lone surrogates, U+FFFE/F); C1 controls
# are legal but no reader wants them, so they go too.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_SAFE_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def clean_text(text: str) -> str:
    """Drop characters that XML cannot carry (NUL, control characters, lone surrogates)."""
    return _ILLEGAL_XML.sub("", text)


def safe_url(url: str) -> str:
    """The URL if it is an absolute http(s) URL, else "" (no javascript:, data:, relative...)."""
    return http_url(clean_text(url))


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


def time_view(dt: datetime, now: datetime) -> TimeView:
    """Format an instant; month and day names are fixed English so output is locale-proof."""
    dt, now = as_utc(dt).replace(microsecond=0), as_utc(now)
    text = f"{_DAYS[dt.weekday()]} {dt.day} {_MONTHS[dt.month - 1]} {dt.year}, {dt:%H:%M} UTC"
    return TimeView(
        iso=dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        rfc822=email.utils.format_datetime(dt, usegmt=True),
        text=text,
        ago=ago(hours_between(dt, now)),
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _explain(story: Story, sources: Sequence[SourceView], now: datetime) -> str:
    """Why the story ranks where it does: "5 sources, first seen 3 h ago".

    The ranker's words when the story is ranked; else counted from the members.
    """
    parts = story.score_parts
    if parts is not None and math.isfinite(parts.age_hours) and 0 <= parts.age_hours < 1e6:
        return explain(story)  # the ranker's own words
    line = _plural(len({s.source_name for s in sources}), "source")
    if story.first_seen is not None:
        line += f", first seen {ago(hours_between(story.first_seen, now))}"
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


def story_view(
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
    began = as_utc(first_seen)
    arrived = datetime.fromisoformat(newest.time.iso.replace("Z", "+00:00"))
    return newest if arrived - began >= WHATS_NEW_AFTER else None


def site_view(settings: Settings) -> SiteView:
    url = clean_text(settings.site_url).strip()
    hours = settings.window_hours
    return SiteView(
        title=clean_text(settings.title),
        description=clean_text(settings.description),
        language=clean_text(settings.language).strip() or "en",
        url=url if url.endswith("/") else url + "/",
        window=_plural(int(hours), "hour") if hours == int(hours) else f"{hours:g} hours",
    )
