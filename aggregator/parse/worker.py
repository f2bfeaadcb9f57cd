"""parse_feed with a deadline: parsing runs in a reusable worker process.

A feed whose text makes a parser's regular expressions crawl, or whose size makes parsing take
minutes, costs that one feed: after ``timeout`` seconds the worker is killed, the pool replaced
and ``NotAFeedError("parsing took longer than N s")`` raised, which the crawl reports like any
other unreadable feed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from aggregator.errors import NotAFeedError, WorkerError
from aggregator.parse import parse_feed
from aggregator.records import ParsedFeed
from aggregator.workers import SHARED

log = logging.getLogger(__name__)
T = TypeVar("T")

_workers = SHARED  # the pool extraction uses too


def parse_feed_bounded(
    body: bytes,
    *,
    url: str = "",
    content_type: str = "",
    max_items: int = 500,
    now: datetime | None = None,
    timeout: float,
) -> ParsedFeed:
    """parse_feed in a worker process; NotAFeedError when it takes longer than ``timeout``."""
    try:
        return _workers.run(
            parse_feed,
            body,
            url=url,
            content_type=content_type,
            max_items=max_items,
            now=now,
            timeout=timeout,
        )
    except WorkerError as exc:
        log.warning("parsing %s %s; gave up", url or "<feed>", exc, extra={"url": url})
        raise NotAFeedError(f"parsing {exc}") from None


def in_worker(func: Callable[..., T], *args: Any, timeout: float, **kwargs: Any) -> T:
    """Any other step of reading a feed (its items' plain text) in the same worker processes;
    WorkerError when it takes longer than ``timeout``."""
    return _workers.run(func, *args, timeout=timeout, **kwargs)


def shutdown_workers() -> None:
    """Stop the worker processes (at exit, or in tests); the next call starts new ones."""
    _workers.shutdown()
