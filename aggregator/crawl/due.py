"""When a source is next due: its interval, the feed's and server's caching hints, backoff.

Pure decisions, no I/O: the crawler feeds them what it knows and stores what they return.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta

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
