"""Feed bytes -> ParsedFeed (FeedItem records): the one entry point, ``parse_feed``.

Well-formed UTF-8 RSS and Atom go through the fast path (``fast``: fastfeedparser's native
extractor); everything else, and every document the fast path cannot vouch for, through the
reference path (``reference``: feedparser, which reads anything); JSON Feed through its own
reader (``jsonfeed``). All three turn their input into the same plain-text, capped, validated
records with the helpers in ``common``. ``worker.parse_feed_bounded`` runs ``parse_feed`` in a
worker process with a deadline.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aggregator.errors import NotAFeedError
from aggregator.parse.fast import parse_fast
from aggregator.parse.jsonfeed import parse_json_feed
from aggregator.parse.reference import parse_with_feedparser
from aggregator.records import ParsedFeed

_JSON_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*\{")


def parse_feed(
    body: bytes,
    *,
    url: str = "",
    content_type: str = "",
    max_items: int = 500,
    now: datetime | None = None,
) -> ParsedFeed:
    """Parse feed bytes; raise NotAFeedError when they hold no feed."""
    if not body.strip():
        raise NotAFeedError("empty body")
    clock = now or datetime.now(UTC)
    if _JSON_START.match(body[:1024]):
        return parse_json_feed(body, url=url, max_items=max_items, now=clock)
    fast = parse_fast(body, url=url, content_type=content_type, max_items=max_items, now=clock)
    if fast is not None:
        return fast
    return parse_with_feedparser(
        body, url=url, content_type=content_type, max_items=max_items, now=clock
    )
