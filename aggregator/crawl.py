"""The crawl stage: fetch every enabled source, parse, extract thin items, store new articles.

One ``SourceOutcome`` per source (new articles, not modified, or an error with its reason); one
failing source never stops the others. Decisions that need no I/O (items -> articles, which
items need their page, how a page fills an article) are plain functions at the bottom.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

from aggregator import extract, parse
from aggregator.config import FetchSettings
from aggregator.fetch import PAGE_ACCEPT, Fetcher
from aggregator.identity import article_id, canonical_url
from aggregator.records import (
    Article,
    ExtractedPage,
    FeedItem,
    FetchResult,
    FetchStatus,
    ParsedFeed,
    SourceOutcome,
)
from aggregator.sources import Config, Source
from aggregator.store import Storage, StorageError

log = logging.getLogger("aggregator.crawl")

FUTURE_SLACK = timedelta(days=1)  # a published date later than now + this is a broken clock
PARSE_TIMEOUT = 60.0  # seconds one feed may take to parse before the source is failed
EXTRACT_TIMEOUT = 20.0  # seconds one article page may take to extract
MAX_TITLE_FROM_TEXT = 120  # characters of text used as a title when an item has none

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class CrawlReport:
    """Every source's outcome for one crawl."""

    outcomes: tuple[SourceOutcome, ...]

    @property
    def fetched(self) -> int:
        """Sources whose feed was fetched and parsed."""
        return sum(o.status is FetchStatus.OK for o in self.outcomes)

    @property
    def not_modified(self) -> int:
        return sum(o.status is FetchStatus.NOT_MODIFIED for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(o.status is FetchStatus.ERROR for o in self.outcomes)

    @property
    def new_articles(self) -> int:
        return sum(o.new_articles for o in self.outcomes)


def crawl(
    config: Config,
    storage: Storage,
    *,
    now: datetime | None = None,
    sources: Iterable[Source] | None = None,
) -> CrawlReport:
    """Crawl ``sources`` (default: every enabled source) and store what is new."""
    return asyncio.run(crawl_async(config, storage, now=now, sources=sources))


async def crawl_async(
    config: Config,
    storage: Storage,
    *,
    now: datetime | None = None,
    sources: Iterable[Source] | None = None,
) -> CrawlReport:
    """The crawl on a running event loop: all sources concurrently, one outcome each."""
    chosen = config.enabled_sources if sources is None else tuple(sources)
    settings = config.settings.fetch
    async with Fetcher(settings) as fetcher:
        crawler = _Crawler(fetcher, storage, settings, now or datetime.now(UTC))
        try:
            outcomes = await asyncio.gather(*(crawler.source(s) for s in chosen))
        finally:
            crawler.close()
    return CrawlReport(tuple(outcomes))


class _Crawler:
    """Shared state of one crawl: the fetcher, the storage and the clock."""

    def __init__(self, fetcher: Fetcher, storage: Storage, settings: FetchSettings, now: datetime):
        self.fetcher = fetcher
        self.storage = storage
        self.settings = settings
        self.now = now
        # Storage is synchronous: run it off the loop, one call at a time, so SQLite never
        # sees competing writers from this process.
        self._db_lock = asyncio.Lock()
        self._extract_slots = asyncio.Semaphore(max(1, os.cpu_count() or 1))
        # Parsing gets its own threads: a parse that overruns its time bound is abandoned, and
        # the default executor would make asyncio.run wait for it on the way out.
        self._parse_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="parse")

    def close(self) -> None:
        self._parse_pool.shutdown(wait=False, cancel_futures=True)

    async def _db(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self._db_lock:
            return await asyncio.to_thread(func, *args, **kwargs)

    async def source(self, source: Source) -> SourceOutcome:
        """One source's outcome; nothing raised here reaches the other sources."""
        started = time.monotonic()
        try:
            outcome = await self._crawl(source)
        except StorageError as exc:
            error = f"storage failed: {exc}"
            log.error("source %s (%s): %s", source.id, source.url, error)
            await self._record_error(source, error)
            outcome = SourceOutcome(source.id, FetchStatus.ERROR, error=error)
        except Exception as exc:
            error = f"unexpected {type(exc).__name__}: {exc}"
            log.exception("source %s (%s): %s", source.id, source.url, error)
            await self._record_error(source, error)
            outcome = SourceOutcome(source.id, FetchStatus.ERROR, error=error)
        return replace(outcome, elapsed=time.monotonic() - started)

    async def _crawl(self, source: Source) -> SourceOutcome:
        state = await self._db(self.storage.fetch_state, source.id)
        result = await self.fetcher.get(
            source.url, etag=state.etag, last_modified=state.last_modified
        )
        if result.status is FetchStatus.NOT_MODIFIED:
            # 304: no parse, nothing rewritten; only the source's health is noted
            await self._db(self.storage.record_fetch, source.id, result, self.now)
            log.info("source %s (%s): not modified", source.id, source.url)
            return SourceOutcome(source.id, FetchStatus.NOT_MODIFIED)
        if result.status is FetchStatus.ERROR:
            return await self._failed(source, result, result.error or "fetch failed")
        try:
            feed = await self._parse(result)
        except parse.NotAFeedError as exc:
            return await self._failed(source, result, not_a_feed_reason(exc))
        except TimeoutError:
            reason = f"parsing the feed took longer than {PARSE_TIMEOUT:g} s"
            return await self._failed(source, result, reason)
        candidates = articles_from_feed(source, feed, self.now)
        known = await self._db(self.storage.known_article_ids, [a.id for a in candidates])
        fresh = [a for a in candidates if a.id not in known]
        fresh = await self._with_pages(source, fresh)
        inserted = await self._db(self.storage.add_articles, fresh)
        await self._db(self.storage.record_fetch, source.id, result, self.now, len(inserted))
        log.info(
            "source %s (%s): %d items, %d new",
            source.id,
            source.url,
            len(feed.items),
            len(inserted),
        )
        return SourceOutcome(
            source.id, FetchStatus.OK, new_articles=len(inserted), seen_items=len(feed.items)
        )

    async def _failed(self, source: Source, result: FetchResult, error: str) -> SourceOutcome:
        """Record and log an expected failure; the validators are not kept."""
        log.warning("source %s (%s): %s", source.id, source.url, error)
        failed = replace(result, status=FetchStatus.ERROR, error=error, body=b"")
        await self._db(self.storage.record_fetch, source.id, failed, self.now)
        return SourceOutcome(source.id, FetchStatus.ERROR, error=error)

    async def _record_error(self, source: Source, error: str) -> None:
        """Best effort: the storage itself may be what failed."""
        failed = FetchResult(url=source.url, status=FetchStatus.ERROR, error=error)
        try:
            await self._db(self.storage.record_fetch, source.id, failed, self.now)
        except Exception:
            log.exception("source %s: could not record the failure", source.id)

    async def _parse(self, result: FetchResult) -> ParsedFeed:
        """feedparser is CPU-bound: parse in a thread, within a time bound."""
        job = functools.partial(
            parse.parse_feed,
            result.body,
            url=result.final_url or result.url,
            content_type=result.content_type,
            max_items=self.settings.max_items_per_feed,
            now=self.now,
        )
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(self._parse_pool, job), PARSE_TIMEOUT)

    async def _with_pages(self, source: Source, articles: list[Article]) -> list[Article]:
        """Fetch and extract the pages of the articles that need them (see needs_page)."""
        short = self.settings.short_text_chars
        wanted = [a for a in articles if needs_page(a, full_text=source.full_text, short=short)]
        if not wanted:
            return articles
        done = await asyncio.gather(*(self._with_page(source, a) for a in wanted))
        better = {a.id: b for a, b in zip(wanted, done, strict=True)}
        return [better.get(a.id, a) for a in articles]

    async def _with_page(self, source: Source, article: Article) -> Article:
        """The article filled from its page; unchanged when the page cannot be had."""
        result = await self.fetcher.get(article.url, accept=PAGE_ACCEPT)
        if result.status is not FetchStatus.OK:
            log.info("source %s: article page %s: %s", source.id, article.url, result.error)
            return article
        if not _looks_like_html(result.content_type):
            log.info(
                "source %s: article page %s is %s", source.id, article.url, result.content_type
            )
            return article
        async with self._extract_slots:
            page = await asyncio.to_thread(
                extract.extract_in_worker, result.body, result.final_url, EXTRACT_TIMEOUT
            )
        if page is None:
            log.info("source %s: nothing extracted from %s", source.id, article.url)
        return merge_page(article, page, self.now)


# -- pure decisions ------------------------------------------------------------------------------


def articles_from_feed(source: Source, feed: ParsedFeed, now: datetime) -> list[Article]:
    """A feed's items as Articles of ``source``, first of each id only, unusable items dropped."""
    out: dict[str, Article] = {}
    for item in feed.items:
        article = article_from_item(source, item, now, feed_language=feed.language)
        if article is not None and article.id not in out:
            out[article.id] = article
    return list(out.values())


def article_from_item(
    source: Source, item: FeedItem, now: datetime, *, feed_language: str = ""
) -> Article | None:
    """One FeedItem -> Article; None when it has no link, GUID or content to name it by."""
    link = _http_url(item.link) or _http_url(item.guid)
    guid = item.guid or ("" if link else _content_key(item))
    if not link and not guid:
        return None
    return Article(
        id=article_id(link, guid, source.id),
        url=canonical_url(link) if link else "",
        title=item.title or _title_from_text(item.summary),
        source_id=source.id,
        source_name=source.name,
        text=item.summary,
        published=clamp_published(item.published, now),
        fetched_at=now,
        language=source.language or item.language or feed_language,
        author=item.author,
        image=item.image,
        guid=item.guid,
        category=source.category,
        weight=source.weight,
    )


def needs_page(article: Article, *, full_text: bool, short: int) -> bool:
    """Fetch the article page for full-text sources and for items with thin feed text."""
    return bool(article.url) and (full_text or len(article.text.strip()) < short)


def merge_page(article: Article, page: ExtractedPage | None, now: datetime) -> Article:
    """Fill an article from its extracted page: longer text wins; feed metadata is kept."""
    if page is None:
        return article
    text = page.text if len(page.text.strip()) > len(article.text.strip()) else article.text
    return replace(
        article,
        text=text,
        title=article.title or page.title,
        published=article.published or clamp_published(page.published, now),
        author=article.author or page.author,
        image=article.image or _http_url(page.image),
        language=article.language or page.language,
    )


def clamp_published(published: datetime | None, now: datetime) -> datetime | None:
    """A date more than a day in the future is a broken clock: treat it as unknown."""
    if published is None:
        return None
    if published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    return None if published > now + FUTURE_SLACK else published


def not_a_feed_reason(exc: Exception) -> str:
    """The parser's reason, always as "not a feed: <why>"."""
    reason = (str(exc).strip() or type(exc).__name__).removesuffix(", not a feed")
    return reason if reason.startswith("not a feed") else f"not a feed: {reason}"


def _http_url(value: str) -> str:
    value = value.strip()
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    return value if parts.scheme.lower() in {"http", "https"} and parts.hostname else ""


def _content_key(item: FeedItem) -> str:
    """A stable stand-in GUID for items with neither link nor GUID: a hash of their content."""
    content = f"{item.title}\n{item.summary}".strip()
    if not content:
        return ""
    return "sha256:" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:32]


def _title_from_text(text: str) -> str:
    words = " ".join(text.split())
    if len(words) <= MAX_TITLE_FROM_TEXT:
        return words
    return words[:MAX_TITLE_FROM_TEXT].rsplit(" ", 1)[0] + "…"


def _looks_like_html(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return not kind or "html" in kind or kind.startswith("text/") or kind.endswith("xml")
