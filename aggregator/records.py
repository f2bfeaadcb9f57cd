"""Typed records passed between the pipeline stages.

Names say which way they flow: a ``FetchResult`` leaves the fetcher, a ``FeedItem`` leaves the
parser, an ``Article`` is what the store keeps, a ``Story`` leaves the clusterer, a ``Summary``
leaves the summariser. All are frozen; stages return new records instead of mutating.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import cached_property
from typing import Literal

from aggregator.text import clean_text, html_to_text

# Caps on what one feed item, page or ingest line brings, wherever it comes from:
MAX_SUMMARY_CHARS = 100_000  # plain-text characters kept of a feed item's teaser or body
MAX_TITLE_CHARS = 1000  # characters kept of a title
MAX_NAME_CHARS = 300  # characters kept of an author's or a source's name
MAX_URL_CHARS = 4096  # a longer link or GUID is not one


class FetchStatus(StrEnum):
    OK = "ok"  # a body was fetched
    NOT_MODIFIED = "not_modified"  # 304: nothing to parse
    ERROR = "error"  # the source failed; ``error`` says why


@dataclass(frozen=True)
class FetchResult:
    """What the fetcher got for one URL."""

    url: str  # the URL asked for
    status: FetchStatus
    body: bytes = b""  # decoded (decompressed) body, empty unless status is OK
    final_url: str = ""  # URL after redirects (never saved as the feed URL)
    http_status: int | None = None  # last HTTP status code seen, if any
    content_type: str = ""  # Content-Type header of the response
    etag: str | None = None  # validators to send next time (conditional GET)
    last_modified: str | None = None
    error: str | None = None  # human-readable reason when status is ERROR
    retry_after: float | None = None  # seconds the server asked us to wait (429/503)
    elapsed: float = 0.0  # wall-clock seconds spent


@dataclass(frozen=True)
class FeedItem:
    """One entry parsed from a feed, before it becomes an Article."""

    title: str  # plain text
    link: str  # absolute URL of the article page ("" when the feed gave none)
    guid: str = ""  # the feed's own id for the item, if any
    summary: str = ""  # teaser or body as the feed gave it: markup when summary_is_html
    published: datetime | None = None  # timezone-aware UTC, or None when absent/absurd
    author: str = ""
    language: str = ""  # BCP 47 tag when the feed says, else ""
    image: str = ""  # URL of a lead image, if the feed gives one
    summary_is_html: bool = False

    @cached_property
    def text(self) -> str:
        """The summary as plain text, hidden content dropped.

        Converted on first use, not while parsing: a crawl converts only the items it has not
        stored before, which is most of the cost of reading a big feed again.
        """
        text = html_to_text(self.summary) if self.summary_is_html else clean_text(self.summary)
        return text[:MAX_SUMMARY_CHARS]


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed feed: its items plus what the feed says about itself."""

    items: tuple[FeedItem, ...]
    title: str = ""
    link: str = ""
    language: str = ""
    format: str = ""  # "rss20", "atom10", ... as reported by the parser


# The metadata an ExtractedPage can carry; extract_page looks only for those it is asked for.
PAGE_FIELDS = frozenset({"title", "author", "published", "image"})


@dataclass(frozen=True)
class ExtractedPage:
    """Text and metadata pulled out of an article's HTML page."""

    text: str  # main text, plain, paragraphs separated by blank lines
    title: str = ""
    author: str = ""
    published: datetime | None = None
    language: str = ""
    image: str = ""


@dataclass(frozen=True)
class Article:
    """A stored article: the unit the clusterer, summariser and renderer work on."""

    id: str  # stable id: hash of the canonical URL (GUID when there is no link)
    url: str  # canonical URL (tracking parameters stripped)
    title: str
    source_id: str  # sources.yaml id, or a domain for ingested articles
    source_name: str
    text: str = ""  # best text we have: extracted page text or the feed's summary
    published: datetime | None = None  # as the source says (UTC), None when unknown
    fetched_at: datetime | None = None  # when we first stored it (UTC)
    language: str = ""
    author: str = ""
    image: str = ""
    guid: str = ""
    category: str = ""  # the source's category
    weight: float = 1.0  # the source's weight at crawl time

    @property
    def timestamp(self) -> datetime:
        """The time used for windows and recency: published, else first seen."""
        ts = self.published or self.fetched_at
        assert ts is not None, "an article needs a published or fetched_at time"
        return ts


@dataclass(frozen=True)
class Score:
    """How hot a story is and why (see rank.py): the score and the parts it is made of."""

    score: float = 0.0  # the hot score: points x recency x balance
    sources: float = 0.0  # distinct sources (a syndicated copy is its original's voice)
    languages: float = 0.0  # distinct languages of the members
    weighted_sources: float = 0.0  # distinct sources, each counted at its weight
    articles: float = 0.0  # members, copies folded into their original
    copies: float = 0.0  # syndicated copies and second URLs folded away
    age_hours: float = 0.0  # since the story was first seen
    last_hours: float = 0.0  # since its newest member
    median_age_hours: float = 0.0  # the median member's age: what recency decays by
    recency: float = 0.0  # 0.5 ** (median age / half-life)
    velocity: float = 0.0  # members per hour over the recent span
    source_points: float = 0.0  # the parts of the score before recency
    article_points: float = 0.0
    velocity_points: float = 0.0
    balance: float = 1.0  # category balance: decay ** (earlier stories of the category)


@dataclass(frozen=True)
class Story:
    """A group of articles about one event, with a stable id."""

    id: str  # stable across runs while the story continues
    article_ids: tuple[str, ...]  # member articles, oldest first
    title: str = ""  # working title (title of the most representative article)
    first_seen: datetime | None = None
    updated: datetime | None = None  # time of the newest member
    category: str = ""
    score_parts: Score | None = None  # the hot score and why; None until ranked

    @property
    def score(self) -> float:
        """The hot score (0 until ranked)."""
        return self.score_parts.score if self.score_parts is not None else 0.0


@dataclass(frozen=True)
class SummarySentence:
    """One sentence of a summary and the articles it cites."""

    text: str  # plain text; never trusted as markup
    citations: tuple[str, ...]  # article ids supporting the sentence (at least one)


@dataclass(frozen=True)
class SummaryItem:
    """One talking point, perspective, timeline entry or "why it matters" line of a story."""

    text: str  # plain text; never trusted as markup
    citations: tuple[str, ...]  # article ids that report it (at least one)
    who: str = ""  # perspectives: who says it (a person, an organisation, an outlet)
    when: str = ""  # timeline: the date of the development, as the articles give it


@dataclass(frozen=True)
class SummaryItems:
    """What a story page shows beside the summary; every item cites its articles."""

    talking_points: tuple[SummaryItem, ...] = ()  # 3-5 points a reader should know
    perspectives: tuple[SummaryItem, ...] = ()  # who says what, each with its reports
    timeline: tuple[SummaryItem, ...] = ()  # dated developments, earliest first
    why_it_matters: SummaryItem | None = None  # one line

    def __bool__(self) -> bool:
        return bool(
            self.talking_points or self.perspectives or self.timeline or self.why_it_matters
        )


@dataclass(frozen=True)
class Summary:
    """A cited summary of one story."""

    story_id: str
    headline: str
    sentences: tuple[SummarySentence, ...]
    method: Literal["extractive", "llm"]  # who wrote it
    model: str = ""  # model name for LLM summaries
    input_hash: str = ""  # hash of members + prompt version + model: unchanged -> reuse
    created: datetime | None = None
    note: str = ""  # e.g. why an LLM summary fell back to extractive
    items: SummaryItems = SummaryItems()  # talking points, perspectives, timeline, why


@dataclass(frozen=True)
class LLMUsageLine:
    """LLM usage of one run on one day, for one model and purpose: a row of the usage ledger
    (table ``llm_usage``), or a sum of such rows."""

    day: str  # the local date (settings.timezone) of the calls, "2026-12-03"
    model: str  # the model the calls asked for
    purpose: str  # what the calls were for: "summary", "ask", "cluster"
    calls: int = 0  # requests sent (retries included)
    prompt_tokens: int = 0  # as the server reported them (0 when it reports none)
    completion_tokens: int = 0
    cost: float | None = None  # from settings.llm.prices; None: the model has no price
    run: str = ""  # the run's key (LLMClient.run_id); "" in sums over runs


@dataclass(frozen=True)
class EditionStory:
    """One story of a daily edition, as it was published: the story (members, times, rank's
    parts), its summary and its lead image then."""

    story: Story
    summary: Summary | None
    image: str = ""  # URL of the lead image shown then ("" for none)


@dataclass(frozen=True)
class Edition:
    """A day's top stories as they stood at the day's last render: the daily edition."""

    day: date  # the calendar day in settings.timezone
    published: datetime  # when this snapshot was rendered (the day's last render so far)
    stories: tuple[EditionStory, ...]  # in rank order


@dataclass(frozen=True)
class FetchState:
    """What the store knows about a source from earlier runs: validators for conditional GET,
    health, and when it is next due. The table ``source_state`` has one column per field."""

    source_id: str
    etag: str | None = None  # validators of the last feed fetched, sent back next time
    last_modified: str | None = None
    last_fetched: datetime | None = None  # the last attempt, successful or not
    last_success: datetime | None = None  # the last fetch that brought a feed or a 304
    last_status: str | None = None  # FetchStatus value of the last attempt
    last_error: str | None = None  # why the last attempt failed (None after a success)
    consecutive_failures: int = 0  # failed attempts since the last success
    articles_total: int = 0  # articles this source has brought, ever
    url: str | None = None  # the URL the state was recorded for (None before it was kept)
    next_fetch: datetime | None = None  # not due before this time
    gone_url: str | None = None  # the URL that answered 410 Gone, if any
    feed_ttl: float | None = None  # seconds the feed said it stays fresh
    last_http_status: int | None = None  # the HTTP status of the last attempt, if any

    def for_url(self, url: str) -> FetchState:
        """This state if it belongs to ``url``; a blank one when the editor changed the URL."""
        if self.url is None or self.url == url:
            return self
        return FetchState(source_id=self.source_id, url=url)

    def gone_at(self, url: str) -> bool:
        """True when ``url`` answered 410 Gone and nobody has cleared the flag since."""
        return self.gone_url is not None and self.gone_url == url


@dataclass(frozen=True)
class FetchRecord:
    """What one fetch of a source changes in its stored FetchState (see Storage.record_fetches).

    ``url`` is the source's URL as configured: when it differs from the one the state was kept
    for, the editor changed it and the old validators, failures and gone flag go.
    ``keep_validators``: a failed fetch whose body answered 200 (a feed that would not parse)
    keeps its validators, so an unchanged body costs a 304 next time instead of a parse.
    """

    source_id: str
    result: FetchResult  # its body is not stored
    now: datetime
    new_articles: int = 0
    url: str | None = None
    next_fetch: datetime | None = None
    gone: bool = False
    feed_ttl: float | None = None
    keep_validators: bool = False


@dataclass(frozen=True)
class SourceOutcome:
    """One source's result for a crawl: new items, not modified, or an error."""

    source_id: str
    status: FetchStatus
    new_articles: int = 0
    seen_items: int = 0
    error: str | None = None
    elapsed: float = 0.0
