"""The editors' report on sources (``aggregator sources report``): over the last N days, what
each source brought, from what is stored.

Per source: its articles; how many reached a hot story (one with at least ``min_sources``
distinct sources, the stories the page can show); the stories only it covered; its repeats (an
article that is a near-duplicate, by ``cluster.dedupe``, of an earlier article of another
source in the same story); the stories it shared with other sources, how many of them it
reported first and its median delay behind the first report; its fetch health. A verdict puts
the sources an editor should act on first:

- **fix**: failing, backing off, gone or never fetched, or no article in the period;
- **drop**: at least MIN_ARTICLES articles, and most of them repeat others, or none reached a
  hot story;
- **weight up**: first to report at least MIN_FIRSTS shared stories and at least half of them;
- **keep**, then **disabled** sources.

The numbers are pure functions of stored records (``build_report``); ``sources_report`` reads
them from the database.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.cluster.dedupe import duplicate_groups
from aggregator.crawl.status import Health, source_status
from aggregator.records import Article, FetchState
from aggregator.sources.load import Config, Source
from aggregator.store import Storage

MIN_ARTICLES = 5  # fewer articles in the period say too little to drop a source for
REPEAT_SHARE = 0.5  # a source whose articles repeat others at least this often: drop
MIN_FIRSTS = 3  # first reports a source needs before it is worth weighting up...
FIRST_SHARE = 0.5  # ...and the share of its shared stories it must have reported first

VERDICTS = ("fix", "drop", "weight up", "keep", "disabled")  # the report's order
_NEEDS_FIXING = {Health.FAILING, Health.BACKING_OFF, Health.GONE, Health.NEVER}


@dataclass(frozen=True)
class SourceReport:
    """One source's line of the report."""

    id: str
    name: str
    weight: float  # its weight in sources.yaml
    articles: int  # its articles of the period
    hot: int  # of them, in a story with at least min_sources distinct sources
    exclusive: int  # stories (with an article of the period) no other source covered
    repeats: int  # articles that near-duplicate an earlier article of another source
    shared: int  # stories (with an article of the period) other sources covered too
    first: int  # of the shared stories, those it reported first
    median_delay_hours: float | None  # its first report behind the story's, over shared ones
    state: str  # its fetch health (crawl.status.Health)
    failures: int  # consecutive failed fetches
    last_error: str | None
    verdict: str  # one of VERDICTS
    why: str  # the reason for the verdict, in words


@dataclass(frozen=True)
class SourcesReport:
    since: datetime
    until: datetime
    min_sources: int
    sources: tuple[SourceReport, ...]  # in VERDICTS order, the most pressing first


@dataclass
class _Tally:
    articles: int = 0
    hot: int = 0
    repeats: int = 0
    exclusive: int = 0
    shared: int = 0
    first: int = 0
    delays: list[float] | None = None


def build_report(
    sources: Sequence[Source],
    period: Sequence[Article],
    story_of: Mapping[str, str],
    members: Mapping[str, Sequence[Article]],
    states: Mapping[str, FetchState],
    *,
    min_sources: int,
    since: datetime,
    until: datetime,
) -> SourcesReport:
    """The report from stored records: the period's articles, the story of each (article id ->
    story id), every member of those stories (any age) and the sources' fetch states."""
    tallies: dict[str, _Tally] = defaultdict(lambda: _Tally(delays=[]))
    story_sources = {sid: {a.source_id for a in arts} for sid, arts in members.items()}
    repeats = _repeats(members.values())
    touched: dict[str, set[str]] = defaultdict(set)  # source id -> stories of its period articles
    for article in period:
        tally = tallies[article.source_id]
        tally.articles += 1
        story = story_of.get(article.id)
        if story is None or story not in members:
            continue  # not clustered yet
        touched[article.source_id].add(story)
        tally.hot += len(story_sources[story]) >= min_sources
        tally.repeats += article.id in repeats
    for source_id, stories in touched.items():
        tally = tallies[source_id]
        for story in stories:
            if story_sources[story] == {source_id}:
                tally.exclusive += 1
                continue
            tally.shared += 1
            first_report = min(a.timestamp for a in members[story])
            own = min(a.timestamp for a in members[story] if a.source_id == source_id)
            tally.first += own == first_report
            assert tally.delays is not None
            tally.delays.append((own - first_report).total_seconds() / 3600)
    lines = [_line(s, tallies[s.id], states.get(s.id), until) for s in sources]
    lines.sort(key=_order)
    return SourcesReport(since, until, min_sources, tuple(lines))


def _repeats(stories: Iterable[Sequence[Article]]) -> set[str]:
    """Ids of the articles whose duplicate group (in their story) began with another source."""
    found: set[str] = set()
    for articles in stories:
        for group in duplicate_groups(articles):
            original = group[0].source_id
            found.update(a.id for a in group[1:] if a.source_id != original)
    return found


def _line(source: Source, tally: _Tally, state: FetchState | None, now: datetime) -> SourceReport:
    status = source_status(
        source_id=source.id,
        name=source.name,
        url=source.url,
        enabled=source.enabled,
        state=state,
        articles_24h=0,
        now=now,
    )
    delays = tally.delays or []
    verdict, why = _verdict(source, tally, status.state, status.consecutive_failures)
    if status.last_error and verdict == "fix":
        why += f": {status.last_error}"
    return SourceReport(
        id=source.id,
        name=source.name,
        weight=source.weight,
        articles=tally.articles,
        hot=tally.hot,
        exclusive=tally.exclusive,
        repeats=tally.repeats,
        shared=tally.shared,
        first=tally.first,
        median_delay_hours=statistics.median(delays) if delays else None,
        state=status.state.value,
        failures=status.consecutive_failures,
        last_error=status.last_error,
        verdict=verdict,
        why=why,
    )


def _verdict(source: Source, tally: _Tally, health: Health, failures: int) -> tuple[str, str]:
    if not source.enabled:
        return "disabled", "enabled: false in sources.yaml"
    if health in _NEEDS_FIXING:
        detail = f" ({failures} failures in a row)" if failures else ""
        return "fix", f"{health.value}{detail}"
    if tally.articles == 0:
        return "fix", "no article in the period"
    if tally.articles >= MIN_ARTICLES and tally.repeats >= REPEAT_SHARE * tally.articles:
        return "drop", f"{tally.repeats} of its {tally.articles} articles repeat other sources"
    if tally.articles >= MIN_ARTICLES and tally.hot == 0:
        return "drop", f"none of its {tally.articles} articles reached a hot story"
    if tally.first >= MIN_FIRSTS and tally.first >= FIRST_SHARE * tally.shared:
        return "weight up", f"first to report {tally.first} of the {tally.shared} stories it shared"
    return "keep", f"{tally.hot} of its {tally.articles} articles in hot stories"


def _order(line: SourceReport) -> tuple[object, ...]:
    """Verdicts in VERDICTS order; within one, the strongest case first."""
    share = line.articles or 1
    within: dict[str, tuple[float, ...]] = {
        "fix": (-line.failures,),
        "drop": (-line.repeats / share, line.hot / share),
        "weight up": (-line.first / (line.shared or 1), -line.first),
        "keep": (-line.hot,),
        "disabled": (),
    }
    return (VERDICTS.index(line.verdict), *within[line.verdict], line.id)


def sources_report(config: Config, storage: Storage, now: datetime, days: float) -> SourcesReport:
    """The report over the ``days`` before ``now``, for the sources of sources.yaml."""
    since = now - timedelta(days=days)
    period = storage.articles(since=since, until=now)
    story_of = storage.story_of_articles(a.id for a in period)
    member_ids = storage.members_of_stories(set(story_of.values()))
    known = {a.id: a for a in period}
    older = [m for ids in member_ids.values() for m in ids if m not in known]
    known.update(storage.articles_by_id(older))  # members from before the period
    members = {sid: [known[m] for m in ids if m in known] for sid, ids in member_ids.items()}
    return build_report(
        config.sources,
        period,
        story_of,
        members,
        storage.fetch_states(),
        min_sources=config.settings.min_sources,
        since=since,
        until=now,
    )
