"""Source health: when a source is next due, how failures back off, what state it is in.

Pure decisions, no I/O: the crawler feeds them what it knows and stores what they return;
the status report classifies sources with them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

DAY = timedelta(days=1)
MAX_BACKOFF = DAY  # failures never push the next fetch further than this (before jitter)
MAX_HINT = DAY  # a feed's TTL or Cache-Control max-age never delays a fetch beyond this
JITTER = 0.10  # backoff waits are spread by up to ±10 %, fixed per source
# A source counts as due slightly early so a schedule firing every `interval` never misses it
# because the last crawl started a few seconds late.
DUE_SLACK = timedelta(minutes=1)
_SCAN_BYTES = 64 * 1024  # the channel-level TTL sits near the top of a feed

_TTL = re.compile(rb"<(?:\w+:)?ttl\s*>\s*(\d{1,7})\s*</", re.IGNORECASE)
_UPDATE_PERIOD = re.compile(rb"<(?:\w+:)?updatePeriod\s*>\s*([a-z]+)\s*</", re.IGNORECASE)
_UPDATE_FREQUENCY = re.compile(rb"<(?:\w+:)?updateFrequency\s*>\s*(\d{1,7})\s*</", re.IGNORECASE)
_PERIODS = {
    "hourly": timedelta(hours=1),
    "daily": DAY,
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d{1,10})", re.IGNORECASE)


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


def jitter(source_id: str) -> float:
    """A factor in [1 - JITTER, 1 + JITTER], the same for a source on every run."""
    digest = hashlib.sha256(source_id.encode("utf-8")).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64  # [0, 1)
    return 1.0 + JITTER * (2.0 * unit - 1.0)


def backoff(failures: int, interval: timedelta, source_id: str) -> timedelta:
    """The wait after ``failures`` consecutive failures: interval × 2^(n-1), capped, jittered."""
    if failures <= 0:
        return interval
    cap = max(MAX_BACKOFF, interval).total_seconds()
    exponent = min(failures - 1, 64)  # in floats: 2^64 intervals is far past any cap
    wait = min(interval.total_seconds() * 2.0**exponent, cap)
    return timedelta(seconds=wait * jitter(source_id))


def next_fetch_time(
    now: datetime,
    *,
    interval: timedelta,
    source_id: str,
    failures: int = 0,
    retry_after: float | None = None,
    feed_ttl: timedelta | None = None,
    max_age: timedelta | None = None,
    max_retry_after: timedelta = DAY,
) -> datetime:
    """When a source fetched at ``now`` is next due.

    A success waits the source's interval, or longer when the feed's TTL or the response's
    Cache-Control max-age asks for it (each clamped to MAX_HINT). A failure backs off
    exponentially instead. A server's Retry-After (clamped to ``max_retry_after``) is a lower
    bound either way.
    """
    if failures > 0:
        wait = backoff(failures, interval, source_id)
    else:
        hints = [min(h, MAX_HINT) for h in (feed_ttl, max_age) if h is not None]
        wait = max([interval, *hints])
    if retry_after is not None and retry_after > 0:
        wait = max(wait, min(timedelta(seconds=retry_after), max_retry_after))
    return now + wait


def is_due(next_fetch: datetime | None, now: datetime, slack: timedelta = DUE_SLACK) -> bool:
    """True when a source may be fetched at ``now`` (never fetched: always due)."""
    return next_fetch is None or now + slack >= next_fetch


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


def feed_ttl(body: bytes) -> timedelta | None:
    """How long the feed says it stays fresh: RSS <ttl> minutes, else sy:updatePeriod."""
    head = body[:_SCAN_BYTES]
    match = _TTL.search(head)
    if match:
        minutes = int(match.group(1))
        return timedelta(minutes=minutes) if minutes > 0 else None
    period = _UPDATE_PERIOD.search(head)
    if not period:
        return None
    span = _PERIODS.get(period.group(1).decode("ascii").lower())
    if span is None:
        return None
    frequency = _UPDATE_FREQUENCY.search(head)
    times = int(frequency.group(1)) if frequency else 1
    return span / times if times > 0 else span


def cache_max_age(header: str | None) -> timedelta | None:
    """Cache-Control max-age as a duration; None when absent or when caching is refused."""
    if not header:
        return None
    lowered = header.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return None
    match = _MAX_AGE.search(header)
    if not match:
        return None
    seconds = int(match.group(1))
    return timedelta(seconds=seconds) if seconds > 0 else None


def describe_wait(until: datetime, now: datetime) -> str:
    """'HH:MM' for a time within a day, else 'YYYY-MM-DD HH:MM' (UTC)."""
    if until - now < DAY and until.date() == now.date():
        return until.strftime("%H:%M")
    return until.strftime("%Y-%m-%d %H:%M")


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
    state: FetchStateLike | None,
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


class FetchStateLike(Protocol):
    """The stored fields the status report reads (aggregator.store.FetchState has them)."""

    @property
    def url(self) -> str | None: ...
    @property
    def gone_url(self) -> str | None: ...
    @property
    def last_fetched(self) -> datetime | None: ...
    @property
    def last_success(self) -> datetime | None: ...
    @property
    def last_status(self) -> str | None: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def consecutive_failures(self) -> int: ...
    @property
    def next_fetch(self) -> datetime | None: ...
