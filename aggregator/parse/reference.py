"""The reference path: feedparser reads the document, whatever shape it is in."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import feedparser

from aggregator.errors import NotAFeedError
from aggregator.parse.common import (
    feed_link,
    has_content,
    looks_like_image,
    plain_line,
    struct_to_datetime,
)
from aggregator.records import MAX_NAME_CHARS, MAX_TITLE_CHARS, MAX_URL_CHARS, FeedItem, ParsedFeed
from aggregator.text import clean_text, language_tag
from aggregator.times import plausible

# Exceptions feedparser reports for feeds that are fine apart from a charset/content-type label.
_BENIGN_BOZO = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_HTML_START = re.compile(
    rb"^(?:\s|<!--.*?-->|<\?xml[^>]*>)*<(?:!doctype\s+html|html[\s>])", re.I | re.S
)
_SAX_POSITION = re.compile(r"^<unknown>:(\d+):(\d+):\s*")


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
    feed_language = language_tag(feed.get("language", "")) or language_tag(
        (feed.get("title_detail") or {}).get("language") or ""
    )
    items = tuple(
        item
        for item in (
            _item(entry, base_url=url, feed_language=feed_language, now=clock)
            for entry in entries[: max(0, max_items)]
        )
        if has_content(item)
    )
    if not items:
        _check_empty_feed(body, parsed)
    return ParsedFeed(
        items=items,
        title=plain_line(feed.get("title", ""), feed.get("title_detail"))[:MAX_TITLE_CHARS],
        link=feed_link(feed.get("link"), url),
        language=feed_language,
        format=str(parsed.get("version") or ""),
    )


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
        title=plain_line(entry.get("title", ""), entry.get("title_detail"))[:MAX_TITLE_CHARS],
        link=_entry_link(entry, base_url),
        guid=guid,
        summary=summary,
        summary_is_html=summary_is_html,
        published=_published(entry, now),
        author=_author(entry),
        language=_entry_language(entry) or feed_language,
        image=_image(entry, base_url),
    )


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
        absolute = feed_link(candidate, base_url)
        if absolute:
            return absolute
    return ""


def _published(entry: Mapping[str, Any], now: datetime) -> datetime | None:
    """Published (else updated) time as aware UTC; None when missing or absurd."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        moment = struct_to_datetime(entry.get(key))
        if moment is not None:
            return plausible(moment, now)
    return None


def _author(entry: Mapping[str, Any]) -> str:
    detail = entry.get("author_detail") or {}
    name = detail.get("name") if isinstance(detail, dict) else None
    return plain_line(name or entry.get("author") or "")[:MAX_NAME_CHARS]


def _entry_language(entry: Mapping[str, Any]) -> str:
    """xml:lang of the entry's content, summary or title, if any."""
    details: list[object] = [*(entry.get("content") or []), entry.get("summary_detail")]
    details.append(entry.get("title_detail"))
    for detail in details:
        if isinstance(detail, dict):
            tag = language_tag(detail.get("language"))
            if tag:
                return tag
    return ""


def _image(entry: Mapping[str, Any], base_url: str) -> str:
    """A lead image: media:content, media:thumbnail, then an image enclosure."""
    for url in _image_candidates(entry):
        absolute = feed_link(url, base_url)
        if absolute:
            return absolute
    return ""


def _image_candidates(entry: Mapping[str, Any]) -> Iterable[object]:
    for media in entry.get("media_content") or []:
        if isinstance(media, dict) and looks_like_image(media):
            yield media.get("url")
    for thumb in entry.get("media_thumbnail") or []:
        if isinstance(thumb, dict):
            yield thumb.get("url")
    for link in entry.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == "enclosure" and looks_like_image(link):
            yield link.get("href")
    image = entry.get("image")
    if isinstance(image, dict):
        yield image.get("href")
