"""View models: everything a template needs of a story, already cleaned.

Every string from a record is untrusted: characters XML cannot carry are stripped here, templates
autoescape, and only http(s) links survive."""

from __future__ import annotations

import email.utils
import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.cluster.dedupe import originals
from aggregator.rank import explain
from aggregator.records import Article, Story, Summary, SummaryItem, SummaryItems
from aggregator.render.strings import ENGLISH, catalogue, date_time_text, names, relative
from aggregator.settings import Settings
from aggregator.times import ago, as_utc, hours_between
from aggregator.urls import http_url

MAX_NAME = 64  # longest story file name (without ".html")

# XML 1.0 forbids these code points outright (C0 controls, lone surrogates, U+FFFE/F); C1 controls
# are legal but no reader wants them, so they go too.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_SAFE_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


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


def category_slug(category: str) -> str:
    """A channel's folder name: the lowercased category when plain ("world"), else a safe name."""
    return safe_name(clean_text(category).strip().lower())


# A story shows a "What's new" line once it has changed since it was first published: a member
# arrived (was first stored) this long after the story's first article did. Articles of one crawl
# arrive within seconds of each other, so a story first seen with several articles, however far
# apart their publication times, has nothing new yet; a reader (and a feed subscriber, whose
# entry is updated in place) sees what changed only when something did.
WHATS_NEW_AFTER = timedelta(minutes=10)
COMPACT_SOURCES = 2  # outlets named on the discover page before "and N more"

# ---------------------------------------------------------------------------------------------
# View models: everything a template needs, already cleaned.


@dataclass(frozen=True)
class TimeView:
    """One instant in every shape the templates print."""

    iso: str  # RFC 3339, UTC: 2025-03-14T09:30:00Z
    rfc822: str  # for RSS: Fri, 14 Mar 2025 09:30:00 GMT
    text: str  # for people: Fri 14 Mar 2025, 09:30 UTC
    ago: str  # relative to the render time, in the site's language: "3 h ago"


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
class ItemView:
    """A talking point, perspective, timeline entry or why-it-matters line, with its sources."""

    text: str
    markers: tuple[SourceView, ...]  # the cited sources, in citation order
    who: str = ""  # perspectives
    when: str = ""  # timeline


@dataclass(frozen=True)
class ImageView:
    """A story's lead image: a thumbnail stored in the site, never a remote URL."""

    path: str  # "images/<hash>.webp", relative to the site root
    alt: str  # the title of the article it comes from
    width: int
    height: int


@dataclass(frozen=True)
class StoryView:
    name: str  # safe file name
    path: str  # "stories/<name>.html", relative to the site root
    url: str  # absolute URL of the story page; also the feeds' stable GUID
    headline: str
    sentences: tuple[SentenceView, ...]
    sources: tuple[SourceView, ...]
    category: str
    explanation: str  # the ranker's words, in English: the feeds' last line
    first_seen: TimeView
    updated: TimeView
    content_html: str = ""  # nh3-sanitised HTML for the feeds
    whats_new: SourceView | None = None  # the newest article of a story that has developed
    category_slug: str = ""  # the channel's folder name; "" without a category
    outlets: str = ""  # the sources as one compact line: "Reuters, BBC and 7 more"
    why: str = ""  # why it is hot, from the ranking's parts, in the site's language
    talking_points: tuple[ItemView, ...] = ()
    perspectives: tuple[ItemView, ...] = ()
    timeline: tuple[ItemView, ...] = ()
    why_it_matters: ItemView | None = None
    image: ImageView | None = None  # the lead image's thumbnail, when one was stored


@dataclass(frozen=True)
class SiteView:
    title: str
    description: str
    language: str
    url: str  # site_url with a trailing slash
    window: str  # "24 hours", in the site's language


@dataclass(frozen=True)
class ChannelView:
    """One category's page and feeds."""

    name: str  # the category as the editor wrote it
    slug: str  # safe folder name
    path: str  # "category/<slug>/", relative to the site root
    url: str  # absolute URL of the channel's folder


def time_view(dt: datetime, now: datetime, strings: Mapping[str, str] = ENGLISH) -> TimeView:
    """Format an instant: the absolute form in the site's language, in UTC, never the locale."""
    dt, now = as_utc(dt).replace(microsecond=0), as_utc(now)
    text = date_time_text(dt, strings)
    return TimeView(
        iso=dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        rfc822=email.utils.format_datetime(dt, usegmt=True),
        text=text,
        ago=relative(hours_between(dt, now), strings),
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


def _why(story: Story, sources: Sequence[SourceView], strings: Mapping[str, str]) -> str:
    """Why the story is hot, from the ranking's parts: "5 sources in 2 languages (9 articles)"."""
    parts = story.score_parts
    count = int(parts.sources) if parts is not None else len({s.source_name for s in sources})
    line = strings["sources_1"] if count == 1 else strings["sources_n"] % {"n": count}
    if parts is None:
        return line
    if parts.languages > 1:
        line += " " + strings["languages_n"] % {"n": int(parts.languages)}
    if parts.articles > parts.sources:
        line += " (" + strings["articles_n"] % {"n": int(parts.articles)} + ")"
    return line


def _article_time(article: Article) -> datetime | None:
    return article.published or article.fetched_at


def _sources(
    story: Story,
    articles: Mapping[str, Article],
    now: datetime,
    strings: Mapping[str, str] = ENGLISH,
) -> dict[str, SourceView]:
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
            time=time_view(when, now, strings) if when is not None else None,
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


def _items(items: Sequence[SummaryItem], by_id: Mapping[str, SourceView]) -> tuple[ItemView, ...]:
    """Items with their citations resolved to numbered sources; one citing none of the
    story's sources is left out (every item on the page links to what reports it)."""
    views = []
    for item in items:
        text = clean_text(item.text).strip()
        cited = tuple(dict.fromkeys(by_id[c] for c in item.citations if c in by_id))
        if text and cited:
            who, when = clean_text(item.who).strip(), clean_text(item.when).strip()
            views.append(ItemView(text=text, markers=cited, who=who, when=when))
    return tuple(views)


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
    strings: Mapping[str, str] = ENGLISH,
) -> StoryView:
    by_id = _sources(story, articles, now, strings)
    sources = list(dict.fromkeys(by_id.values()))
    times = [t for t in (_article_time(articles[a]) for a in by_id) if t is not None]
    first_seen = story.first_seen or (min(times) if times else now)
    updated = story.updated or (max(times) if times else first_seen)
    name = safe_name(story.id)
    category = clean_text(story.category or next((articles[a].category for a in by_id), ""))
    outlets = list(dict.fromkeys(s.source_name for s in sources))
    items = summary.items if summary is not None else SummaryItems()
    why = _items([items.why_it_matters] if items.why_it_matters else [], by_id)
    return StoryView(
        name=name,
        path=f"stories/{name}.html",
        url=f"{site.url}stories/{name}.html",
        headline=_headline(story, summary, sources),
        sentences=tuple(_sentences(summary, by_id)),
        sources=tuple(sources),
        category=category.strip(),
        explanation=clean_text(_explain(story, sources, now)),
        first_seen=time_view(first_seen, now, strings),
        updated=time_view(updated, now, strings),
        whats_new=whats_new(by_id, articles),
        category_slug=category_slug(category) if category.strip() else "",
        outlets=names(outlets, strings, COMPACT_SOURCES),
        why=clean_text(_why(story, sources, strings)),
        talking_points=_items(items.talking_points, by_id),
        perspectives=_items(items.perspectives, by_id),
        timeline=_items(items.timeline, by_id),
        why_it_matters=why[0] if why else None,
    )


def whats_new(
    by_id: Mapping[str, SourceView], articles: Mapping[str, Article]
) -> SourceView | None:
    """The newest arrival, once the story has changed since it was first published: it reached
    us WHATS_NEW_AFTER or more after the story's first article did. Arrival is when an article
    was first stored (``fetched_at``); without it nothing is known to have changed."""
    arrivals = [(t, by_id[a]) for a in by_id if (t := articles[a].fetched_at) is not None]
    if len({view.number for _, view in arrivals}) < 2:
        return None
    began = min(as_utc(t) for t, _ in arrivals)
    arrived, newest = max(arrivals, key=lambda pair: (as_utc(pair[0]), pair[1].number))
    return newest if as_utc(arrived) - began >= WHATS_NEW_AFTER else None


def site_view(settings: Settings, strings: Mapping[str, str] = ENGLISH) -> SiteView:
    url = clean_text(settings.site_url).strip()
    hours = settings.window_hours
    count = int(hours) if hours == int(hours) else f"{hours:g}"
    return SiteView(
        title=clean_text(settings.title),
        description=clean_text(settings.description),
        language=clean_text(settings.language).strip() or "en",
        url=url if url.endswith("/") else url + "/",
        window=strings["window_1"] if count == 1 else strings["window_n"] % {"n": count},
    )


def summaries_line(summaries: Iterable[Summary], strings: Mapping[str, str] = ENGLISH) -> str:
    """The footer's "Summaries: 5 by llama3.1, 2 extractive." over the site's stories' summaries
    ("" when there are none): who wrote what readers see, model by model, most first."""
    by_model: Counter[str] = Counter()
    extractive = 0
    for summary in summaries:
        if summary.method == "llm":
            by_model[clean_text(summary.model).strip() or "LLM"] += 1
        else:
            extractive += 1
    parts = [
        strings["summaries_by"] % {"n": n, "model": model}
        for model, n in sorted(by_model.items(), key=lambda item: (-item[1], item[0]))
    ]
    if extractive:
        parts.append(strings["summaries_extractive"] % {"n": extractive})
    if not parts:
        return ""
    return strings["summaries_line"] % {"parts": strings["list_sep"].join(parts)}


def channel_view(category: str, site: SiteView) -> ChannelView:
    slug = category_slug(category)
    path = f"category/{slug}/"
    return ChannelView(name=category.strip(), slug=slug, path=path, url=site.url + path)


def strings_for(settings: Settings) -> Mapping[str, str]:
    """The interface strings of the configured language."""
    return catalogue(settings.language)
