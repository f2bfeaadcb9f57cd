"""Times: aware UTC everywhere, ISO 8601 and HTTP dates in and out, "N h ago", and the limits
past which a date a source gives is a broken clock rather than news."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)  # older dates are broken clocks or defaults
FUTURE_SLACK = timedelta(days=1)  # scheduled posts and clock skew; later dates are absurd
_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; naive times are taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_iso(value: str) -> datetime:
    """ISO 8601 (a trailing Z allowed) -> aware UTC; naive times are taken as UTC.

    Raises ValueError for anything else.
    """
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return as_utc(parsed)


def iso(value: datetime | None) -> str | None:
    """2025-03-14T09:30:00Z (None stays None)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP date (RFC 9110: "Fri, 14 Mar 2025 09:30:00 GMT") as aware UTC; None if garbage."""
    if not value or not value.strip():
        return None
    try:
        return as_utc(parsedate_to_datetime(value.strip()))
    except (TypeError, ValueError, IndexError):
        return None


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (seconds, or an HTTP date); None when garbage.

    Unclamped: a date in the past gives a negative wait, a huge number a huge one.
    """
    if not value or not value.strip():
        return None
    value = value.strip()
    if _SECONDS.match(value):
        return float(value)
    when = parse_http_date(value)
    if when is None:
        return None
    return (when - (now or utcnow())).total_seconds()


def plausible(moment: datetime | None, now: datetime) -> datetime | None:
    """The date as aware UTC; None before EARLIEST_DATE or past ``now`` + FUTURE_SLACK."""
    if moment is None:
        return None
    moment = as_utc(moment)
    if moment < EARLIEST_DATE or moment > as_utc(now) + FUTURE_SLACK:
        return None
    return moment


def ago(hours: float) -> str:
    """How long ago, rounded to the unit shown: "just now", "30 min ago", "4 h ago", "3 days ago".

    Negative spans (a source's clock runs ahead) read as "just now".
    """
    minutes = round(max(hours, 0.0) * 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    whole_hours = round(hours)
    if whole_hours < 48:
        return f"{whole_hours} h ago"
    return f"{round(hours / 24)} days ago"


def hours_between(earlier: datetime, later: datetime) -> float:
    """Hours from ``earlier`` to ``later``, never negative (clocks of sources run ahead)."""
    return max(0.0, (as_utc(later) - as_utc(earlier)).total_seconds() / 3600)
