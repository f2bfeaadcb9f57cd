"""JSON Feed 1.0/1.1 (https://jsonfeed.org), which feedparser 6 does not read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from feedparser.datetimes import _parse_date as parse_feed_date

from aggregator.errors import NotAFeedError
from aggregator.parse.common import (
    MARKUP,
    feed_link,
    has_content,
    plain_line,
    struct_to_datetime,
)
from aggregator.records import (
    MAX_NAME_CHARS,
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
    FeedItem,
    ParsedFeed,
)
from aggregator.text import clean_text, html_to_text, language_tag
from aggregator.times import plausible

# --- JSON Feed (https://jsonfeed.org), which feedparser 6 does not read ----------------------


def parse_json_feed(body: bytes, *, url: str, max_items: int, now: datetime) -> ParsedFeed:
    """Parse a JSON Feed 1.0/1.1 document."""
    try:
        doc = json.loads(body.decode("utf-8-sig", "replace"))
    except ValueError as exc:
        raise NotAFeedError(f"not a feed: invalid JSON ({exc})") from None
    version = str(doc.get("version") or "") if isinstance(doc, dict) else ""
    items = doc.get("items") if isinstance(doc, dict) else None
    if "jsonfeed.org" not in version or not isinstance(items, list):
        raise NotAFeedError("not a feed: JSON without a JSON Feed version and items")
    feed_language = language_tag(doc.get("language"))
    base = feed_link(doc.get("home_page_url"), url) or url
    parsed = (
        _json_item(raw, base_url=base, feed_language=feed_language, now=now)
        for raw in items[: max(0, max_items)]
        if isinstance(raw, dict)
    )
    return ParsedFeed(
        items=tuple(item for item in parsed if has_content(item)),
        title=plain_line(html_to_text(str(doc.get("title") or "")))[:MAX_TITLE_CHARS],
        link=feed_link(doc.get("home_page_url"), url),
        language=feed_language,
        format="json1" if version.endswith("/1") else "json11",
    )


def _json_item(
    raw: Mapping[str, Any], *, base_url: str, feed_language: str, now: datetime
) -> FeedItem:
    """One JSON Feed item -> FeedItem."""
    html = str(raw.get("content_html") or "")
    plain = str(raw.get("content_text") or "")
    teaser = str(raw.get("summary") or "")
    body = html_to_text(html) if len(html) >= len(plain) else _json_text(plain)
    if len(teaser) > len(body):
        body = _json_text(teaser)
    authors = raw.get("authors") or [raw.get("author")]
    names = [str(a.get("name") or "") for a in authors if isinstance(a, dict)]
    guid = raw.get("id")
    return FeedItem(
        title=plain_line(html_to_text(str(raw.get("title") or "")))[:MAX_TITLE_CHARS],
        link=feed_link(raw.get("url"), base_url) or feed_link(raw.get("external_url"), base_url),
        guid=clean_text(str(guid))[:MAX_URL_CHARS] if guid is not None else "",
        summary=body[:MAX_SUMMARY_CHARS],
        published=_json_date(raw, now),
        author=plain_line(", ".join(n for n in names if n))[:MAX_NAME_CHARS],
        language=language_tag(raw.get("language")) or feed_language,
        image=feed_link(raw.get("image"), base_url) or feed_link(raw.get("banner_image"), base_url),
    )


def _json_text(value: str) -> str:
    """A JSON Feed plain-text field; some publishers put HTML in them anyway."""
    return html_to_text(value) if MARKUP.search(value) else clean_text(value)


def _json_date(raw: Mapping[str, Any], now: datetime) -> datetime | None:
    """date_published (else date_modified) through feedparser's lenient date parser."""
    for key in ("date_published", "date_modified"):
        value = raw.get(key)
        if isinstance(value, str) and value.strip():
            moment = struct_to_datetime(parse_feed_date(value.strip()))
            if moment is not None:
                return plausible(moment, now)
    return None
