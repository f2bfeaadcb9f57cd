"""The crawl stage: fetch every due source, parse, extract thin items, store new articles.

One ``SourceOutcome`` per fetched source (new articles, not modified, or an error with its
reason) and one ``SkippedSource`` per source left alone (not due yet, or gone); one failing
source never stops the others. When a source is next due is decided by ``crawl.due``; which
items become articles and which need their page by ``crawl.items``; article pages are fetched
only where the host's robots.txt allows it (``crawl.robots``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from aggregator.crawl.due import describe_wait, feed_ttl, is_due, next_fetch_time
from aggregator.crawl.fetch import PAGE_ACCEPT, Fetcher, HttpResult
from aggregator.crawl.items import (
    FeedRead,
    articles_from_items,
    item_texts,
    merge_page,
    named_items,
    needs_page,
    not_a_feed_reason,
    page_wants,
    past_retention,
    read_feed,
)
from aggregator.crawl.robots import (
    ROBOTS_ACCEPT,
    RobotsRules,
    robots_agent,
    robots_rules,
    url_origin,
)
from aggregator.errors import DatabaseBusyError, NotAFeedError, StorageError, WorkerError
from aggregator.extract_worker import extract_in_worker
from aggregator.parse import worker as parse_worker
from aggregator.records import (
    Article,
    ExtractedPage,
    FeedItem,
    FetchRecord,
    FetchResult,
    FetchState,
    FetchStatus,
    ParsedFeed,
    SourceOutcome,
)
from aggregator.settings import Settings
from aggregator.sources.load import Config, Source
from aggregator.store import Storage
from aggregator.times import utcnow
from aggregator.workers import WORKERS

log = logging.getLogger("aggregator.crawl")

# A batch of writes is stored once it holds this many new articles or sources' fetches.
WRITE_ARTICLES = 2_000
WRITE_SOURCES = 200

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class SkippedSource:
    """A source this crawl did not fetch, and why."""

    source_id: str
    reason: str  # "not due until 14:30", "gone: ..."
    gone: bool = False  # a problem for the editor, not just a wait


@dataclass(frozen=True)
class CrawlReport:
    """Every source's outcome for one crawl."""

    outcomes: tuple[SourceOutcome, ...]  # the sources fetched (or tried)
    skipped: tuple[SkippedSource, ...] = ()  # the sources left alone this time

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

    @property
    def gone(self) -> int:
        return sum(s.gone for s in self.skipped)

    @property
    def all_failed(self) -> bool:
        """Every source tried failed (an exit code 1); nothing tried is not a failure."""
        return bool(self.outcomes) and self.failed == len(self.outcomes)


Progress = Callable[[str], None]  # called with a source id as each source finishes


def crawl(
    config: Config,
    storage: Storage,
    *,
    now: datetime | None = None,
    sources: Iterable[Source] | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> CrawlReport:
    """Crawl ``sources`` (default: every enabled source) and store what is new.

    Sources not yet due are skipped unless ``force``; gone sources are skipped always.
    """
    chosen = config.enabled_sources if sources is None else tuple(sources)
    return asyncio.run(_crawl(config.settings, storage, chosen, now or utcnow(), force, progress))


async def _crawl(
    settings: Settings,
    storage: Storage,
    chosen: Sequence[Source],
    now: datetime,
    force: bool,
    progress: Progress | None,
) -> CrawlReport:
    """The crawl on a running event loop: one outcome per source, a bounded number at a time."""
    states = await asyncio.to_thread(storage.fetch_states)  # one query, not one per source
    async with Fetcher(settings.fetch) as fetcher:
        crawler = _Crawler(fetcher, storage, settings, now, states)
        crawler.force = force
        crawler.progress = progress
        try:
            results = await crawler.run(chosen)
        finally:
            crawler.close()
    outcomes = tuple(r for r in results if isinstance(r, SourceOutcome))
    skipped = tuple(r for r in results if isinstance(r, SkippedSource))
    return CrawlReport(outcomes, skipped)


@dataclass
class _Written:
    """A source's share of a pending write: its new articles and its fetch record."""

    index: int  # the source's place in the crawl's results
    source: Source
    state: FetchState
    articles: list[Article]
    record: FetchRecord


class _Crawler:
    """Shared state of one crawl: the fetcher, the storage and the clock.

    Sources go through a fixed number of lanes (twice the fetch concurrency), so the work in
    flight, and the memory it holds, is bounded by the concurrency, never by the number of
    sources. Their writes are gathered and stored in batches, one transaction each.
    """

    def __init__(
        self,
        fetcher: Fetcher,
        storage: Storage,
        settings: Settings,
        now: datetime,
        states: dict[str, FetchState] | None = None,
    ):
        self.fetcher = fetcher
        self.storage = storage
        self.crawl_interval = timedelta(minutes=settings.crawl_interval_minutes)
        self.settings = settings.fetch
        self.now = now
        # items published before this get no text and no page: the next upkeep would prune it
        self.text_after = settings.retention_cutoff(now)
        self.states = states if states is not None else {}
        self.force = False
        self.progress: Progress | None = None
        self.lanes = 2 * self.settings.concurrency
        self.results: list[SourceOutcome | SkippedSource] = []
        # robots.txt per origin, fetched once per crawl by whichever page asks first
        self._robots: dict[str, asyncio.Future[RobotsRules]] = {}
        # robots.txt Crawl-delay: one page at a time per origin, spaced by the delay
        self._paced: dict[str, asyncio.Lock] = {}
        self._next_page: dict[str, float] = {}
        self._agent = robots_agent(self.settings.user_agent)
        # Storage is synchronous: run it off the loop, one call at a time, so SQLite never
        # sees competing writers from this process.
        self._db_lock = asyncio.Lock()
        # Every worker call (parsing, items' text, page extraction) is waited for on the crawl's
        # own threads: one per call the pool takes (a process each and one waiting, WORKERS + 1)
        # and a spare for a call being handed back. They keep the default executor free for
        # storage, and a call that overruns its bound is abandoned, where the default executor
        # would make asyncio.run wait for it on the way out.
        self._waiters = ThreadPoolExecutor(max_workers=WORKERS + 2, thread_name_prefix="worker")
        self._pending: list[_Written] = []
        self._pending_ids: set[str] = set()  # ids of the articles queued
        self._flushing_ids: set[str] = set()  # ids of the articles being stored

    def close(self) -> None:
        self._waiters.shutdown(wait=False, cancel_futures=True)

    async def run(self, sources: Sequence[Source]) -> list[SourceOutcome | SkippedSource]:
        """Every source's outcome, in the order given."""
        self.results = [SkippedSource(s.id, "not reached") for s in sources]
        queue = iter(enumerate(sources))

        async def lane() -> None:
            for index, source in queue:  # the lanes share one iterator: each source once
                self.results[index] = await self.source(source, index)

        await asyncio.gather(*(lane() for _ in range(min(self.lanes, len(sources)))))
        await self._flush()
        return self.results

    async def _db(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A write, off the event loop, one at a time."""
        async with self._db_lock:
            return await asyncio.to_thread(func, *args, **kwargs)

    async def _read(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A read, off the event loop; it need not wait for a batch being written (SQLite's
        write-ahead log and PostgreSQL both let readers run beside the writer)."""
        return await asyncio.to_thread(func, *args, **kwargs)

    def _unwritten(self, article_id: str) -> bool:
        """True for an article another source brought in this crawl, not stored yet."""
        return article_id in self._pending_ids or article_id in self._flushing_ids

    async def source(self, source: Source, index: int = -1) -> SourceOutcome | SkippedSource:
        """One source's outcome; nothing raised here reaches the other sources."""
        started = time.monotonic()
        state = self.states.get(source.id, FetchState(source_id=source.id)).for_url(source.url)
        try:
            skip = self._skip(source, state)
            outcome: SourceOutcome | SkippedSource = skip or await self._crawl(source, state, index)
        except DatabaseBusyError:
            raise  # every source's writes would wait for it: the crawl ends (exit code 75)
        except StorageError as exc:
            error = f"storage failed: {exc}"
            log.error(
                "source %s (%s): %s",
                source.id,
                source.url,
                error,
                extra=_fields(source),
            )
            await self._record_error(source, state, error)
            outcome = SourceOutcome(source.id, FetchStatus.ERROR, error=error)
        except Exception as exc:
            error = f"unexpected {type(exc).__name__}: {exc}"
            log.exception(
                "source %s (%s): %s",
                source.id,
                source.url,
                error,
                extra=_fields(source),
            )
            await self._record_error(source, state, error)
            outcome = SourceOutcome(source.id, FetchStatus.ERROR, error=error)
        if self.progress is not None:
            self.progress(source.id)
        if isinstance(outcome, SkippedSource):
            return outcome
        return replace(outcome, elapsed=time.monotonic() - started)

    def _skip(self, source: Source, state: FetchState) -> SkippedSource | None:
        """Why this source is left alone this time, or None to fetch it."""
        if state.gone_at(source.url):
            reason = (
                f"gone: {source.url} answered 410 Gone; fix the URL in sources.yaml or run "
                f"'aggregator status --clear {source.id}'"
            )
            log.warning(
                "source %s (%s): %s",
                source.id,
                source.url,
                reason,
                extra=_fields(source),
            )
            return SkippedSource(source.id, reason, gone=True)
        if not self.force and not is_due(state.next_fetch, self.now):
            assert state.next_fetch is not None
            reason = f"skipped: not due until {describe_wait(state.next_fetch, self.now)}"
            log.info(
                "source %s (%s): %s",
                source.id,
                source.url,
                reason,
                extra=_fields(source),
            )
            return SkippedSource(source.id, reason)
        return None

    def _interval(self, source: Source) -> timedelta:
        return timedelta(minutes=source.interval) if source.interval else self.crawl_interval

    def _next_fetch(
        self,
        source: Source,
        result: FetchResult,
        *,
        failures: int = 0,
        ttl: float | None = None,
    ) -> datetime:
        return next_fetch_time(
            self.now,
            interval=self._interval(source),
            source_id=source.id,
            failures=failures,
            retry_after=result.retry_after,
            feed_ttl=timedelta(seconds=ttl) if ttl else None,
            max_age=_max_age(result),
            max_retry_after=timedelta(seconds=self.settings.max_retry_after),
        )

    async def _crawl(self, source: Source, state: FetchState, index: int) -> SourceOutcome:
        result = await self.fetcher.get(
            source.url, etag=state.etag, last_modified=state.last_modified
        )
        if result.status is FetchStatus.NOT_MODIFIED:
            return await self._not_modified(source, state, result, index)
        if result.status is FetchStatus.ERROR:
            return await self._failed(source, state, result, result.error or "fetch failed")
        try:
            read = await self._read_feed(source, state, result)
            known = await self._read(self.storage.known_article_ids, [n[0][0] for n in read.named])
            new = [
                k
                for k, ((article_id, _, _), _) in enumerate(read.named)
                if article_id not in known and not self._unwritten(article_id)
            ]
            named = [read.named[k] for k in new]
            if read.texts or not named:
                texts = [read.texts[k] for k in new]
            else:
                texts = await self._texts([item for _, item in named])
        except NotAFeedError as exc:
            return await self._failed(source, state, result, not_a_feed_reason(exc), kept=True)
        except TimeoutError:
            reason = f"parsing the feed took longer than {self.settings.parse_timeout:g} s"
            return await self._failed(source, state, result, reason, kept=True)
        ttl = feed_ttl(result.body)
        ttl_seconds = ttl.total_seconds() if ttl else None
        fresh = articles_from_items(source, named, texts, self.now, read.language)
        fresh = await self._with_pages(source, fresh)
        record = FetchRecord(  # its new_articles are counted by _write
            source.id,
            replace(result, body=b""),
            self.now,
            url=source.url,
            next_fetch=self._next_fetch(source, result, ttl=ttl_seconds),
            feed_ttl=ttl_seconds,
        )
        added = await self._write(index, source, state, fresh, record)
        log.info(
            "source %s (%s): %d items, %d new",
            source.id,
            source.url,
            read.items,
            added,
            extra=_fields(source),
        )
        return SourceOutcome(source.id, FetchStatus.OK, new_articles=added, seen_items=read.items)

    async def _not_modified(
        self, source: Source, state: FetchState, result: FetchResult, index: int
    ) -> SourceOutcome:
        """A 304: no parse, nothing rewritten; only the source's health is noted."""
        if _unreadable_before(state):
            # the body that would not parse last time, unchanged: the same failure, no parse
            error = state.last_error or "not a feed"
            return await self._failed(source, state, result, error, kept=True)
        next_fetch = self._next_fetch(source, result, ttl=state.feed_ttl)
        record = FetchRecord(source.id, result, self.now, url=source.url, next_fetch=next_fetch)
        await self._write(index, source, state, [], record)
        log.info(
            "source %s (%s): not modified",
            source.id,
            source.url,
            extra=_fields(source),
        )
        return SourceOutcome(source.id, FetchStatus.NOT_MODIFIED)

    async def _texts(self, items: Sequence[FeedItem]) -> list[str]:
        """The items' plain text: HTML converted in a worker process (the costly part of
        reading a feed), plain text cleaned here; "" for items past retention (past_retention)."""
        kept = [not past_retention(item, self.now, self.text_after) for item in items]
        html = [
            item for item, keep in zip(items, kept, strict=True) if keep and item.summary_is_html
        ]
        converted = iter(await self._item_texts(html) if html else [])
        return [
            ("" if not keep else next(converted) if item.summary_is_html else item.text)
            for item, keep in zip(items, kept, strict=True)
        ]

    async def _item_texts(self, items: list[FeedItem]) -> list[str]:
        try:
            return await self._worker(item_texts, items)
        except WorkerError as exc:
            raise NotAFeedError(f"reading its items' text {exc}") from None

    # -- batched writes -------------------------------------------------------------------------

    async def _write(
        self,
        index: int,
        source: Source,
        state: FetchState,
        articles: list[Article],
        record: FetchRecord,
    ) -> int:
        """Queue a source's new articles and fetch record; a batch is stored when it is full.

        The number of articles queued: one another source queued meanwhile (the same story
        syndicated) counts for that source only.
        """
        articles = [a for a in articles if not self._unwritten(a.id)]
        record = replace(record, new_articles=len(articles))
        self._pending.append(_Written(index, source, state, articles, record))
        self._pending_ids.update(a.id for a in articles)
        if len(self._pending_ids) >= WRITE_ARTICLES or len(self._pending) >= WRITE_SOURCES:
            await self._flush()
        return len(articles)

    async def _flush(self) -> None:
        """Store the pending batch in one transaction; if that fails, source by source, so a
        failure is charged to the source whose write failed, as if there were no batching."""
        batch, self._pending = self._pending, []
        flushing, self._pending_ids = self._pending_ids, set()
        if not batch:
            return
        self._flushing_ids |= flushing
        try:
            await self._store(batch)
        finally:
            self._flushing_ids -= flushing

    async def _store(self, batch: list[_Written]) -> None:
        articles = [a for w in batch for a in w.articles]
        try:
            await self._db(self.storage.save_crawl, articles, [w.record for w in batch])
            return
        except DatabaseBusyError:
            raise  # one by one would wait as long again, each
        except StorageError as exc:
            log.warning("storing a batch of %d sources failed (%s); one by one", len(batch), exc)
        for written in batch:
            try:
                await self._db(self.storage.save_crawl, written.articles, [written.record])
            except StorageError as exc:
                error = f"storage failed: {exc}"
                log.error(
                    "source %s (%s): %s",
                    written.source.id,
                    written.source.url,
                    error,
                    extra=_fields(written.source),
                )
                await self._record_error(written.source, written.state, error)
                if 0 <= written.index < len(self.results):
                    self.results[written.index] = SourceOutcome(
                        written.source.id, FetchStatus.ERROR, error=error
                    )

    async def _failed(
        self,
        source: Source,
        state: FetchState,
        result: FetchResult,
        error: str,
        *,
        kept: bool = False,
    ) -> SourceOutcome:
        """Record and log an expected failure.

        The source backs off (or waits as long as the server's Retry-After asked); a 410 Gone
        flags it so no later crawl fetches that URL again. ``kept``: the server answered with
        a body that could not be read (or a 304 for that same body), whose validators are kept
        so an unchanged body is not fetched and parsed again only to fail again.
        """
        gone = result.http_status == 410
        if gone:
            error += "; not fetched again until its URL changes"
        log.warning(
            "source %s (%s): %s",
            source.id,
            source.url,
            error,
            extra=_fields(source),
        )
        if kept and result.status is FetchStatus.NOT_MODIFIED:
            result = replace(result, etag=state.etag, last_modified=state.last_modified)
        failed = replace(result, status=FetchStatus.ERROR, error=error, body=b"")
        await self._store_failure(source, state, failed, gone=gone, kept=kept)
        return SourceOutcome(source.id, FetchStatus.ERROR, error=error)

    async def _record_error(self, source: Source, state: FetchState, error: str) -> None:
        """Best effort: the storage itself may be what failed."""
        failed = FetchResult(url=source.url, status=FetchStatus.ERROR, error=error)
        try:
            await self._store_failure(source, state, failed)
        except Exception:
            log.exception(
                "source %s: could not record the failure", source.id, extra={"source_id": source.id}
            )

    async def _store_failure(
        self,
        source: Source,
        state: FetchState,
        failed: FetchResult,
        *,
        gone: bool = False,
        kept: bool = False,
    ) -> None:
        """Store one more consecutive failure and the backed-off time of the next fetch."""
        failures = state.consecutive_failures + 1
        record = FetchRecord(
            source.id,
            failed,
            self.now,
            url=source.url,
            next_fetch=self._next_fetch(source, failed, failures=failures),
            gone=gone,
            keep_validators=kept,
        )
        await self._db(self.storage.record_fetches, [record])

    async def _read_feed(self, source: Source, state: FetchState, result: FetchResult) -> FeedRead:
        """The feed parsed and its items named. A source that never brought an article (its
        first crawl) gets its items' text in the same worker call, all of them being new;
        otherwise the text waits until the store says which items are new (``texts`` empty)."""
        if state.articles_total:
            feed = await self._parse(result)
            return FeedRead(len(feed.items), feed.language, named_items(source, feed), [])
        try:
            return await self._worker(
                read_feed,
                result.body,
                source=source,
                text_after=self.text_after,
                **self._feed(result),
            )
        except WorkerError as exc:
            raise NotAFeedError(f"parsing {exc}") from None

    async def _parse(self, result: FetchResult) -> ParsedFeed:
        """Parse in a worker process that is killed past ``parse_timeout`` (a regex-pathological
        feed must not hold a core forever); the thread only waits for it."""
        job = functools.partial(
            parse_worker.parse_feed_bounded,
            result.body,
            timeout=self.settings.parse_timeout,
            **self._feed(result),
        )
        return await self._waited(job, self.settings.parse_timeout)

    def _feed(self, result: FetchResult) -> dict[str, Any]:
        """What parsing a fetched feed needs besides its body."""
        return {
            "url": result.final_url or result.url,
            "content_type": result.content_type,
            "max_items": self.settings.max_items_per_feed,
            "now": self.now,
        }

    async def _worker(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """func in a worker process, bounded by ``parse_timeout`` (WorkerError past it)."""
        job = functools.partial(
            parse_worker.in_worker, func, *args, timeout=self.settings.parse_timeout, **kwargs
        )
        return await self._waited(job, self.settings.parse_timeout)

    async def _waited(self, job: Callable[[], T], timeout: float) -> T:
        """A worker call bounded by ``timeout``, waited for on one of the crawl's own threads.
        The outer bound only guards the waiting thread; the worker's own bound fires first."""
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(self._waiters, job), timeout + 30)

    async def _with_pages(self, source: Source, articles: list[Article]) -> list[Article]:
        """Fetch and extract the pages of the articles that need them (see needs_page)."""
        short = self.settings.short_text_chars
        wanted = [
            a
            for a in articles
            if needs_page(a, full_text=source.full_text, short=short, text_after=self.text_after)
        ]
        if not wanted:
            return articles
        done = await asyncio.gather(*(self._with_page(source, a) for a in wanted))
        better = {a.id: b for a, b in zip(wanted, done, strict=True)}
        return [better.get(a.id, a) for a in articles]

    async def _with_page(self, source: Source, article: Article) -> Article:
        """The article filled from its page; unchanged when the page cannot be had."""
        rules = await self._robots_for(article.url)
        if not rules.allows(article.url, self._agent):
            log.info(
                "source %s: article page %s not fetched: %s",
                source.id,
                article.url,
                rules.why,
                extra={"source_id": source.id, "url": article.url},
            )
            return article
        delay = min(rules.crawl_delay(self._agent), self.settings.max_crawl_delay)
        async with self._pace(article.url, delay):
            result = await self.fetcher.get(article.url, accept=PAGE_ACCEPT)
        if result.status is not FetchStatus.OK:
            log.info(
                "source %s: article page %s: %s",
                source.id,
                article.url,
                result.error,
                extra={"source_id": source.id, "url": article.url},
            )
            return article
        if not _looks_like_html(result.content_type):
            log.info(
                "source %s: article page %s is %s",
                source.id,
                article.url,
                result.content_type,
                extra={"source_id": source.id, "url": article.url},
            )
            return article
        timeout = self.settings.extract_timeout
        job = functools.partial(
            _extract_in_worker, result.body, result.final_url, timeout, page_wants(article)
        )
        page = await self._waited(job, timeout)
        if page is None:
            log.info(
                "source %s: nothing extracted from %s",
                source.id,
                article.url,
                extra={"source_id": source.id, "url": article.url},
            )
        return merge_page(article, page, self.now)

    @contextlib.asynccontextmanager
    async def _pace(self, url: str, delay: float) -> AsyncIterator[None]:
        """Hold a page fetch until ``delay`` seconds after the origin's previous one started."""
        if delay <= 0:
            yield
            return
        origin = url_origin(url)
        loop = asyncio.get_running_loop()
        async with self._paced.setdefault(origin, asyncio.Lock()):
            wait = self._next_page.get(origin, 0.0) - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_page[origin] = loop.time() + delay
            yield

    async def _robots_for(self, url: str) -> RobotsRules:
        """The robots.txt rules of ``url``'s origin, fetched once per crawl."""
        origin = url_origin(url)
        pending = self._robots.get(origin)
        if pending is None:
            pending = asyncio.ensure_future(self._load_robots(origin))
            self._robots[origin] = pending
        return await asyncio.shield(pending)

    async def _load_robots(self, origin: str) -> RobotsRules:
        result = await self.fetcher.get(
            f"{origin}/robots.txt", accept=ROBOTS_ACCEPT, max_bytes=self.settings.robots_max_bytes
        )
        rules = robots_rules(result)
        # rules.why explains a page it refuses; a file that was read is not a refusal in itself
        read = f"read ({len(result.body):,} bytes)" if rules.parser is not None else rules.why
        log.info("robots.txt of %s: %s", origin, read)
        return rules


def _extract_in_worker(
    html: bytes, url: str, timeout: float, want: frozenset[str]
) -> ExtractedPage | None:
    """extract_worker.extract_in_worker: the crawl's own process never imports the extractor,
    its workers do (see extract_worker.py).

    A missing author is taken from the page's meta tags and JSON-LD only, without the byline
    search in its text: no page, feed or export shows an author, and on the bench's 439 pages
    that search was 6 % of the extraction's CPU (tests/test_extract.py has the numbers).
    ``aggregator extract`` still searches."""
    return extract_in_worker(html, url, timeout, want, byline=False)


def _fields(source: Source) -> dict[str, str]:
    """The fields of a log line about ``source`` (see logs.py)."""
    return {"source_id": source.id, "url": source.url}


def _unreadable_before(state: FetchState) -> bool:
    """The last fetch failed on a body the server sent (or confirmed with a 304): a feed that
    would not parse. Other failures (no answer, an HTTP error) carry no such status."""
    return (
        state.last_status == FetchStatus.ERROR.value
        and state.last_http_status in {200, 304}
        and bool(state.last_error)
    )


def _max_age(result: FetchResult) -> timedelta | None:
    seconds = result.max_age if isinstance(result, HttpResult) else None
    return timedelta(seconds=seconds) if seconds else None


def _looks_like_html(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return not kind or "html" in kind or kind.startswith("text/") or kind.endswith("xml")
