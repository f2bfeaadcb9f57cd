"""The status report: each source's health, in one word and the facts behind it.

Pure decisions over what the store knows (``records.FetchState``); ``status_report`` reads it
for every source of sources.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from aggregator.crawl.due import is_due
from aggregator.errors import UserError
from aggregator.records import FetchState
from aggregator.sources.load import Config
from aggregator.store import Storage


class Health(StrEnum):
    """A source's state in the status report."""

    OK = "ok"  # the last fetch brought a feed
    NOT_MODIFIED = "not modified"  # the last fetch was a 304
    FAILING = "failing"  # the last fetch failed and the source is due again
    BACKING_OFF = "backing off"  # failed (or asked us to wait) and not due yet
    GONE = "gone"  # HTTP 410: never fetched again until its URL changes or it is cleared
    DISABLED = "disabled"  # enabled: false in sources.yaml
    NEVER = "never fetched"


@dataclass(frozen=True)
class SourceFacts:
    """What the status report knows about a source: settings plus stored state."""

    enabled: bool
    fetched: bool  # fetched at least once (at its current URL)
    gone: bool  # flagged gone at its current URL
    consecutive_failures: int
    last_status: str | None  # FetchStatus value of the last fetch
    next_fetch: datetime | None


def classify(facts: SourceFacts, now: datetime) -> Health:
    """The one word the status report shows for a source."""
    if not facts.enabled:
        return Health.DISABLED
    if facts.gone:
        return Health.GONE
    if not facts.fetched:
        return Health.NEVER
    if facts.consecutive_failures > 0 or facts.last_status == "error":
        return Health.FAILING if is_due(facts.next_fetch, now) else Health.BACKING_OFF
    return Health.NOT_MODIFIED if facts.last_status == "not_modified" else Health.OK


@dataclass(frozen=True)
class SourceStatus:
    """One line of the status report."""

    id: str
    name: str
    url: str
    state: Health
    last_success: datetime | None  # the last fetch that brought a feed or a 304
    last_fetched: datetime | None  # the last attempt, successful or not
    last_error: str | None  # why the last attempt failed (None after a success)
    consecutive_failures: int
    next_fetch: datetime | None  # None: due now (never fetched) or never (gone, disabled)
    articles_24h: int  # articles of this source in the last 24 hours


def source_status(
    *,
    source_id: str,
    name: str,
    url: str,
    enabled: bool,
    state: FetchState | None,
    articles_24h: int,
    now: datetime,
) -> SourceStatus:
    """The status line of a source from its settings and stored state."""
    current = state if state is not None and state.url in (None, url) else None
    gone = current is not None and current.gone_url == url
    facts = SourceFacts(
        enabled=enabled,
        fetched=current is not None and current.last_fetched is not None,
        gone=gone,
        consecutive_failures=current.consecutive_failures if current else 0,
        last_status=current.last_status if current else None,
        next_fetch=current.next_fetch if current else None,
    )
    health = classify(facts, now)
    waiting = health not in {Health.GONE, Health.DISABLED}
    return SourceStatus(
        id=source_id,
        name=name,
        url=url,
        state=health,
        last_success=current.last_success if current else None,
        last_fetched=current.last_fetched if current else None,
        last_error=current.last_error if current else None,
        consecutive_failures=facts.consecutive_failures,
        next_fetch=facts.next_fetch if waiting else None,
        articles_24h=articles_24h,
    )


def status_report(config: Config, storage: Storage, now: datetime) -> list[SourceStatus]:
    """Every source of sources.yaml with its health, in file order."""
    states = storage.fetch_states()
    counts = storage.recent_article_counts(now - timedelta(hours=24))
    return [
        source_status(
            source_id=s.id,
            name=s.name,
            url=s.url,
            enabled=s.enabled,
            state=states.get(s.id),
            articles_24h=counts.get(s.id, 0),
            now=now,
        )
        for s in config.sources
    ]


def clear_health(config: Config, storage: Storage, source_ids: Iterable[str]) -> None:
    """Forget the sources' failures, waits and gone flag, so the next crawl fetches them."""
    for source_id in source_ids:
        if config.source(source_id) is None:
            raise UserError(f"no source {source_id!r} in {config.path}")
        storage.clear_source_health(source_id)
