"""Feed bytes -> ParsedFeed (FeedItem records).

Well-formed UTF-8 RSS and Atom go through the fast path (aggregator.parse_fast, fastfeedparser's
native extractor); everything else, and every document the fast path cannot vouch for, through
feedparser, which reads anything. We hand feedparser the bytes the fetcher got (wrapped in a
stream, so it never fetches or opens a file) and turn its loose dictionaries into plain-text,
capped, validated records; the fast path reuses the same helpers so both give the same records.
``parse_feed_bounded`` (aggregator.parse_worker) runs parse_feed in a worker process with a
deadline.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
from feedparser.datetimes import _parse_date as parse_feed_date

from aggregator.records import MAX_SUMMARY_CHARS, FeedItem, ParsedFeed
from aggregator.text import clean_text, html_to_text

MAX_TITLE_CHARS = 1000
MAX_AUTHOR_CHARS = 300
MAX_URL_CHARS = 4096
EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)  # older dates are broken clocks or defaults
FUTURE_SLACK = timedelta(days=2)  # scheduled posts and clock skew; later dates are absurd

# Exceptions feedparser reports for feeds that are fine apart from a charset/content-type label.
_BENIGN_BOZO = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_HTML_START = re.compile(
    rb"^(?:\s|<!--.*?-->|<\?xml[^>]*>)*<(?:!doctype\s+html|html[\s>])", re.I | re.S
)
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$")
_MARKUP = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*[\s>/]|/[a-zA-Z]|!--)")
_JSON_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*\{")
_SAX_POSITION = re.compile(r"^<unknown>:(\d+):(\d+):\s*")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".svg")


class NotAFeedError(ValueError):
    """The body is not a feed we can read; the message says why."""


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
        return _parse_json_feed(body, url=url, max_items=max_items, now=clock)
    from aggregator.parse_fast import parse_fast  # it builds on this module's helpers

    fast = parse_fast(body, url=url, content_type=content_type, max_items=max_items, now=clock)
    if fast is not None:
        return fast
    return parse_with_feedparser(
        body, url=url, content_type=content_type, max_items=max_items, now=clock
    )


def parse_with_feedparser(
    body: bytes, *, url: str = "", content_type: str = "", max_items: int = 500, now: datetime
) -> ParsedFeed:
    """The reference path: feedparser reads the document, whatever shape it is in."""
    clock = now
    headers = {"content-type": content_type or "application/xml", "content-location": url}
    # A stream, never the bytes themselves: feedparser would treat bytes as a file name.
    # Its HTML sanitiser is off because we keep only plain text (html_to_text drops scripts,
    # styles and hidden elements); sanitising made big feeds ten times slower to parse.
    parsed = feedparser.parse(
        io.BytesIO(body),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    entries = parsed.get("entries") or []
    feed = parsed.get("feed") or {}
    feed_language = _language(feed.get("language", "")) or _language(
        (feed.get("title_detail") or {}).get("language") or ""
    )
    items = tuple(
        item
        for item in (
            _item(entry, base_url=url, feed_language=feed_language, now=clock)
            for entry in entries[: max(0, max_items)]
        )
        if _has_content(item)
    )
    if not items:
        _check_empty_feed(body, parsed)
    return ParsedFeed(
        items=items,
        title=_plain(feed.get("title", ""), feed.get("title_detail"))[:MAX_TITLE_CHARS],
        link=_absolute(feed.get("link"), url),
        language=feed_language,
        format=str(parsed.get("version") or ""),
    )


def _has_content(item: FeedItem) -> bool:
    """False for the empty shell a truncated document can leave as its last entry."""
    return bool(item.link or item.guid or item.title or item.text)


def _check_empty_feed(body: bytes, parsed: Mapping[str, Any]) -> None:
    """A document without entries is only a feed if it says so cleanly; else raise."""
    version = parsed.get("version") or ""
    feed = parsed.get("feed") or {}
    error = parsed.get("bozo_exception") if parsed.get("bozo") else None
    serious = error is not None and not isinstance(error, _BENIGN_BOZO)
    if not version and _HTML_START.match(body[:4096]):
        raise NotAFeedError("an HTML page, not a feed")
    if serious:
        raise NotAFeedError(f"not a feed: {_describe(error)}")
    if not version and not feed.get("title"):
        raise NotAFeedError("not a feed: no RSS, Atom or RDF document found")


def _describe(error: object) -> str:
    """feedparser's bozo exception as one readable line."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    # SAX says "<unknown>:5:0: no element found"; say where in plain words instead.
    text = _SAX_POSITION.sub(lambda m: f"line {m[1]}, column {m[2]}: ", text)
    return text or type(error).__name__


def _item(
    entry: Mapping[str, Any], *, base_url: str, feed_language: str, now: datetime
) -> FeedItem:
    """One feedparser entry -> FeedItem."""
    guid = clean_text(str(entry.get("id") or ""))[:MAX_URL_CHARS]
    summary, summary_is_html = _summary(entry)
    return FeedItem(
        title=_plain(entry.get("title", ""), entry.get("title_detail"))[:MAX_TITLE_CHARS],
        link=_entry_link(entry, base_url),
        guid=guid,
        summary=summary,
        summary_is_html=summary_is_html,
        published=_published(entry, now),
        author=_author(entry),
        language=_entry_language(entry) or feed_language,
        image=_image(entry, base_url),
    )


def _plain(value: object, detail: Mapping[str, Any] | None = None) -> str:
    """Plain text of a feedparser value: HTML converted, text cleaned, one line."""
    text = str(value or "")
    kind = str((detail or {}).get("type") or "")
    # feedparser marks a value HTML when it saw markup; entities double-escaped by publishers
    # ("&amp;amp;") survive as "&amp;" in plain text, so those get HTML treatment too.
    if "html" in kind or "&" in text:
        text = html_to_text(text)
    return " ".join(clean_text(text).split())


def _summary(entry: Mapping[str, Any]) -> tuple[str, bool]:
    """The longer of the entry's content and summary, and whether it is markup.

    It becomes plain text when used (FeedItem.text), not here.
    """
    candidates: list[tuple[str, Mapping[str, Any] | None]] = [
        (str(c.get("value") or ""), c) for c in entry.get("content") or [] if isinstance(c, dict)
    ]
    candidates.append((str(entry.get("summary") or ""), entry.get("summary_detail")))
    best = max(candidates, key=lambda pair: len(pair[0]))
    value, detail = best
    kind = str((detail or {}).get("type") or "text/html")
    return value, "html" in kind or "xml" in kind


def _absolute(link: object, base: str) -> str:
    """An absolute http(s) URL, or "" for anything else (javascript:, mailto:, garbage)."""
    if not isinstance(link, str):
        return ""
    link = link.strip()
    if not link or len(link) > MAX_URL_CHARS:
        return ""
    try:
        absolute = urljoin(base, link) if base else link
        parts = urlsplit(absolute)
    except ValueError:
        return ""
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        return ""
    return absolute


def _entry_link(entry: Mapping[str, Any], base_url: str) -> str:
    """The article link: <link>, an alternate link, or a permalink GUID."""
    # feedparser's "link" can be an enclosure's when an alternate link has no href attribute
    # (its URL as element text), so the alternates come first.
    candidates: list[object] = [
        link.get("href")
        for link in entry.get("links") or []
        if isinstance(link, dict) and link.get("rel", "alternate") == "alternate"
    ]
    candidates.append(entry.get("link"))
    for candidate in candidates:
        absolute = _absolute(candidate, base_url)
        if absolute:
            return absolute
    return ""


def _published(entry: Mapping[str, Any], now: datetime) -> datetime | None:
    """Published (else updated) time as aware UTC; None when missing or absurd."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        moment = _to_datetime(entry.get(key))
        if moment is not None:
            if moment < EARLIEST_DATE or moment > now + FUTURE_SLACK:
                return None
            return moment
    return None


def _to_datetime(value: object) -> datetime | None:
    """feedparser's UTC struct_time -> aware datetime."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _author(entry: Mapping[str, Any]) -> str:
    detail = entry.get("author_detail") or {}
    name = detail.get("name") if isinstance(detail, dict) else None
    return _plain(name or entry.get("author") or "")[:MAX_AUTHOR_CHARS]


def _language(value: object) -> str:
    """A BCP 47-looking tag ("en-US"), or "" for anything else."""
    tag = str(value or "").strip().replace("_", "-")
    if not _LANGUAGE.match(tag):
        return ""
    primary, *rest = tag.split("-")
    # Canonical BCP 47 case: "en-US", "zh-Hant-TW".
    subtags = [s.upper() if len(s) == 2 else s.title() if len(s) == 4 else s.lower() for s in rest]
    return "-".join([primary.lower(), *subtags])


def _entry_language(entry: Mapping[str, Any]) -> str:
    """xml:lang of the entry's content, summary or title, if any."""
    details: list[object] = [*(entry.get("content") or []), entry.get("summary_detail")]
    details.append(entry.get("title_detail"))
    for detail in details:
        if isinstance(detail, dict):
            tag = _language(detail.get("language"))
            if tag:
                return tag
    return ""


def _image(entry: Mapping[str, Any], base_url: str) -> str:
    """A lead image: media:content, media:thumbnail, then an image enclosure."""
    for url in _image_candidates(entry):
        absolute = _absolute(url, base_url)
        if absolute:
            return absolute
    return ""


def _image_candidates(entry: Mapping[str, Any]) -> Iterable[object]:
    for media in entry.get("media_content") or []:
        if isinstance(media, dict) and _looks_like_image(media):
            yield media.get("url")
    for thumb in entry.get("media_thumbnail") or []:
        if isinstance(thumb, dict):
            yield thumb.get("url")
    for link in entry.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == "enclosure" and _looks_like_image(link):
            yield link.get("href")
    image = entry.get("image")
    if isinstance(image, dict):
        yield image.get("href")


def _looks_like_image(media: Mapping[str, Any]) -> bool:
    """True for media declared as an image, or an untyped URL with an image file suffix."""
    kind = str(media.get("type") or "")
    if kind:
        return kind.startswith("image/")
    if str(media.get("medium") or "") == "image":
        return True
    url = str(media.get("url") or media.get("href") or "")
    return urlsplit(url).path.lower().endswith(_IMAGE_SUFFIXES)


# --- JSON Feed (https://jsonfeed.org), which feedparser 6 does not read ----------------------


def _parse_json_feed(body: bytes, *, url: str, max_items: int, now: datetime) -> ParsedFeed:
    """Parse a JSON Feed 1.0/1.1 document."""
    try:
        doc = json.loads(body.decode("utf-8-sig", "replace"))
    except ValueError as exc:
        raise NotAFeedError(f"not a feed: invalid JSON ({exc})") from None
    version = str(doc.get("version") or "") if isinstance(doc, dict) else ""
    items = doc.get("items") if isinstance(doc, dict) else None
    if "jsonfeed.org" not in version or not isinstance(items, list):
        raise NotAFeedError("not a feed: JSON without a JSON Feed version and items")
    feed_language = _language(doc.get("language"))
    base = _absolute(doc.get("home_page_url"), url) or url
    parsed = (
        _json_item(raw, base_url=base, feed_language=feed_language, now=now)
        for raw in items[: max(0, max_items)]
        if isinstance(raw, dict)
    )
    return ParsedFeed(
        items=tuple(item for item in parsed if _has_content(item)),
        title=_plain(html_to_text(str(doc.get("title") or "")))[:MAX_TITLE_CHARS],
        link=_absolute(doc.get("home_page_url"), url),
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
        title=_plain(html_to_text(str(raw.get("title") or "")))[:MAX_TITLE_CHARS],
        link=_absolute(raw.get("url"), base_url) or _absolute(raw.get("external_url"), base_url),
        guid=clean_text(str(guid))[:MAX_URL_CHARS] if guid is not None else "",
        summary=body[:MAX_SUMMARY_CHARS],
        published=_json_date(raw, now),
        author=_plain(", ".join(n for n in names if n))[:MAX_AUTHOR_CHARS],
        language=_language(raw.get("language")) or feed_language,
        image=_absolute(raw.get("image"), base_url) or _absolute(raw.get("banner_image"), base_url),
    )


def _json_text(value: str) -> str:
    """A JSON Feed plain-text field; some publishers put HTML in them anyway."""
    return html_to_text(value) if _MARKUP.search(value) else clean_text(value)


def _json_date(raw: Mapping[str, Any], now: datetime) -> datetime | None:
    """date_published (else date_modified) through feedparser's lenient date parser."""
    for key in ("date_published", "date_modified"):
        value = raw.get(key)
        if isinstance(value, str) and value.strip():
            moment = _to_datetime(parse_feed_date(value.strip()))
            if moment is not None:
                return moment if EARLIEST_DATE <= moment <= now + FUTURE_SLACK else None
    return None
