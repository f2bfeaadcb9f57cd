"""The fast path of feed parsing: fastfeedparser (lxml plus a native extractor) -> FeedItem.

``parse_fast`` returns None for any document whose result it cannot vouch for; ``parse_feed``
then uses feedparser, the slow but thorough reference. The guards below are the places where
fastfeedparser is known to read a document differently from feedparser: xml:base and relative
links, legacy and conflicting encodings, malformed XML it repairs its own way, entries without
links or dates it fills from elsewhere. Everything it does read goes through the same
normalisation as the feedparser path, so the records are the same whichever path made them;
``benchmarks/bench_parse.py`` and ``tests/test_parse_fast.py`` compare the two on every entry
of 200 real feeds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastfeedparser import main as _ffp
from feedparser.mixin import _FeedParserMixin

from aggregator import parse
from aggregator.records import FeedItem, ParsedFeed
from aggregator.text import clean_text, html_to_text

# Relative links resolved against xml:base: feedparser's rules are the reference.
_XML_BASE = re.compile(rb"xml:base\s*=")
_ABSOLUTE = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.-]*:")  # a scheme: http:, tag:, urn:...
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)""")
_UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.I)
_ENTRY_TAG = re.compile(rb"<(?:item|entry)[\s>]")
_LANGUAGE_TAG = re.compile(
    rb"<(?:dc:)?language>\s*(?:<!\[CDATA\[)?\s*([^<\]]{1,64}?)\s*(?:\]\]>)?\s*</"
)
_ITUNES_IMAGE = re.compile(rb"<itunes:image[\s>/]")
_NOT_PERMALINK = re.compile(rb"""isPermaLink\s*=\s*["']false""", re.I)
_LINK_TAG = re.compile(rb"<(?:[A-Za-z0-9_]+:)?link[\s>/]")
_GUID_TAG = re.compile(rb"<(?:guid|id)[\s>]")
_MEDIA_THUMBNAIL = re.compile(rb"<[A-Za-z0-9_]+:thumbnail[\s>/]")
_MEDIA_DESCRIPTION = re.compile(rb"<[A-Za-z0-9_]+:description[\s>/]")
_ROOT_LANG = re.compile(rb"<(?:rss|feed|rdf:RDF|channel)\b[^>]*?xml:lang\s*=\s*[\"']([^\"']{1,64})")
_EMAIL_AUTHOR = re.compile(r"^\s*\S+@\S+\s*\((.+)\)\s*$")
_looks_like_html = _FeedParserMixin.looks_like_html
_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")
_FORMATS = {"rss": "rss20", "atom": "atom10", "rdf": "rss10"}


def parse_fast(
    body: bytes, *, url: str, content_type: str, max_items: int, now: datetime
) -> ParsedFeed | None:
    """Parse an XML feed quickly; None when feedparser must decide."""
    if not _plain_utf8(body, content_type):
        return None
    try:
        doc = _parse_strict(body)
    except Exception:  # any failure: feedparser has the last word (and the error message)
        return None
    if doc is None:
        return None
    entries = doc.get("entries") or []
    feed = doc.get("feed") or {}
    if not entries or len(entries) != len(_ENTRY_TAG.findall(body)):
        return None  # none found, or some lost to a repair: feedparser decides
    feed_language = _feed_language(feed, body)
    entries_part = body[_head_end(body) :]
    if _ITUNES_IMAGE.search(entries_part):
        return None  # an entry's <itunes:image> is feedparser's entry image; not reported here
    guids = len(_GUID_TAG.findall(entries_part))
    if 0 < guids < len(entries):
        return None  # some entries without a GUID: fastfeedparser reports their link as one
    links = len(_LINK_TAG.findall(entries_part))
    if links < len(entries) and _NOT_PERMALINK.search(entries_part):
        return None  # an entry without <link> whose GUID is no link: fastfeedparser uses it
    media = _Media(
        thumbnails=bool(_MEDIA_THUMBNAIL.search(entries_part)),
        descriptions=bool(_MEDIA_DESCRIPTION.search(entries_part)),
        xml_base=bool(_XML_BASE.search(body)),
    )
    items: list[FeedItem] = []
    for entry in entries[: max(0, max_items)]:
        item = _item(
            entry,
            base_url=url,
            feed_language=feed_language,
            now=now,
            has_guid=guids > 0,
            media=media,
        )
        if item is None:
            return None
        if parse._has_content(item):
            items.append(item)
    return ParsedFeed(
        items=tuple(items),
        title=_title(feed.get("title"))[: parse.MAX_TITLE_CHARS],
        link=parse._absolute(feed.get("link"), url),
        language=feed_language,
        format=_FORMATS.get(str(doc.get("version") or feed.get("type") or ""), ""),
    )


def _parse_strict(body: bytes) -> Mapping[str, Any] | None:
    """fastfeedparser's native extractor alone: None unless the document is well-formed.

    Its public ``parse`` repairs malformed documents with libxml2's recovery, which reads some
    of them differently from feedparser (text cut at an undefined entity, markup turned into
    text); those documents go to feedparser instead. These are private functions of
    fastfeedparser, hence the pinned version; tests/test_parse_fast.py notices a change.
    """
    core = getattr(_ffp, "_core", None)
    if core is None:
        return None
    prepared, looks_malformed = _ffp._prepare_xml_bytes(body)
    if looks_malformed:
        return None
    doc: Mapping[str, Any] | None = _ffp._parse_with_core(
        prepared,
        include_content=True,
        include_tags=False,
        include_media=True,
        include_enclosures=True,
    )
    return doc


def _feed_language(feed: Mapping[str, Any], body: bytes) -> str:
    """The feed's <language> (fastfeedparser's native path drops it), else the root's xml:lang."""
    head = body[: _head_end(body)]
    for pattern in (_LANGUAGE_TAG, _ROOT_LANG):
        match = pattern.search(head)
        if match:
            return parse._language(match[1].decode("utf-8", "replace"))
    return parse._language(feed.get("language"))


def _head_end(body: bytes) -> int:
    """Where the first entry starts (the feed-level part ends)."""
    match = _ENTRY_TAG.search(body)
    return match.start() if match else len(body)


def _plain_utf8(body: bytes, content_type: str) -> bool:
    """True for a UTF-8 (or ASCII) document whose labels agree on it."""
    if body.startswith(_BOMS):
        return False
    match = _DECLARED_ENCODING.match(body.removeprefix(b"\xef\xbb\xbf")[:512])
    declared = match[1].decode("ascii").lower() if match else "utf-8"
    charset = _CHARSET.search(content_type)
    labelled = charset[1].lower() if charset else declared
    if body.isascii():
        # Labels only matter for non-ASCII bytes, except for encodings that are not
        # ASCII-compatible (UTF-16, EBCDIC) which feedparser would decode differently.
        return declared in _UTF8_NAMES or declared.startswith(("iso-8859", "windows-", "cp125"))
    if declared not in _UTF8_NAMES or labelled not in _UTF8_NAMES:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True)
class _Media:
    """Which Media RSS elements the document's entries use."""

    thumbnails: bool  # <media:thumbnail>: an image fastfeedparser may not report
    descriptions: bool  # <media:description>: a summary feedparser reads
    xml_base: bool  # xml:base somewhere: relative URLs resolve against it, not the feed URL


def _item(
    entry: Mapping[str, Any],
    *,
    base_url: str,
    feed_language: str,
    now: datetime,
    has_guid: bool,
    media: _Media,
) -> FeedItem | None:
    """One fastfeedparser entry -> FeedItem; None when the entry needs feedparser."""
    published = _published(entry, now)
    if published is _UNREADABLE or not entry.get("link"):
        return None  # a GUID may stand in for the link: feedparser's rules decide
    contents = [m for m in entry.get("media_content") or [] if isinstance(m, dict)]
    # A thumbnail beside a media:content is not reported; feedparser's image may be it.
    if media.thumbnails and contents and not any(_has_image(m) for m in contents):
        return None
    if media.descriptions and not any(m.get("description") for m in contents):
        return None  # a media:description outside media:content: not reported
    if media.xml_base and not _all_absolute(entry):
        return None  # feedparser resolves relative URLs against xml:base; we do not
    link = _link(entry, base_url)
    if link is None:
        return None
    # Without any <guid>/<id>, fastfeedparser reports the link as the id; feedparser none.
    guid = clean_text(str(entry.get("id") or ""))[: parse.MAX_URL_CHARS] if has_guid else ""
    return FeedItem(
        title=_title(entry.get("title"))[: parse.MAX_TITLE_CHARS],
        link=link,
        guid=guid,
        summary=_summary(entry),
        published=published if isinstance(published, datetime) else None,
        author=_author(entry.get("author"))[: parse.MAX_AUTHOR_CHARS],
        language=_entry_language(entry) or feed_language,
        image=_image(entry, base_url),
    )


def _all_absolute(entry: Mapping[str, Any]) -> bool:
    """True when the entry's link, link hrefs, image URLs and id carry their own scheme."""
    urls: list[object] = [entry.get("link"), entry.get("id")]
    urls += [link.get("href") for link in entry.get("links") or [] if isinstance(link, dict)]
    urls += list(_image_candidates(entry))
    return all(_ABSOLUTE.match(url) for url in urls if isinstance(url, str) and url.strip())


def _has_image(media: Mapping[str, Any]) -> bool:
    return parse._looks_like_image(media) or bool(media.get("thumbnail_url"))


def _title(value: object) -> str:
    """As parse._plain on feedparser's value: HTML when it looks like HTML or has an "&"."""
    text = str(value or "")
    if "&" in text or ("<" in text and _looks_like_html(text)):
        text = html_to_text(text)
    return " ".join(clean_text(text).split())


def _author(value: object) -> str:
    """ "jane@example.org (Jane Doe)" -> "Jane Doe", as feedparser's author_detail name."""
    text = str(value or "")
    match = _EMAIL_AUTHOR.match(text)
    return parse._plain(match[1] if match else text)


def _link(entry: Mapping[str, Any], base_url: str) -> str | None:
    """feedparser's link: the first alternate link; None when only feedparser can tell."""
    links = [link for link in entry.get("links") or [] if isinstance(link, dict)]
    alternates = [
        link.get("href") for link in links if (link.get("rel") or "alternate") == "alternate"
    ]
    if links and not alternates:
        return None  # only enclosures, related links...: fastfeedparser picks one, feedparser none
    for candidate in alternates or [entry.get("link")]:
        absolute = parse._absolute(candidate, base_url)
        if absolute:
            return absolute
    return ""


_UNREADABLE = object()


def _published(entry: Mapping[str, Any], now: datetime) -> object:
    """Aware UTC, None when absent or absurd, _UNREADABLE when only feedparser can tell."""
    for key in ("published", "updated"):
        value = entry.get(key)
        if not value:
            continue
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return _UNREADABLE
        if moment.tzinfo is None:
            return _UNREADABLE
        moment = moment.astimezone(UTC).replace(microsecond=0)
        if moment < parse.EARLIEST_DATE or moment > now + parse.FUTURE_SLACK:
            return None
        return moment
    return None


def _summary(entry: Mapping[str, Any]) -> str:
    candidates: list[tuple[str, str]] = [
        (str(c.get("value") or ""), str(c.get("type") or "text/html"))
        for c in entry.get("content") or []
        if isinstance(c, dict)
    ]
    candidates.append((str(entry.get("description") or ""), "text/html"))
    for media in entry.get("media_content") or []:
        if isinstance(media, dict) and media.get("description"):
            candidates.append((str(media["description"]), "text/html"))
    value, kind = max(candidates, key=lambda pair: len(pair[0]))
    text = html_to_text(value) if "html" in kind or "xml" in kind else clean_text(value)
    return text[: parse.MAX_SUMMARY_CHARS]


def _entry_language(entry: Mapping[str, Any]) -> str:
    for content in entry.get("content") or []:
        if isinstance(content, dict):
            tag = parse._language(content.get("language"))
            if tag:
                return tag
    return ""


def _image(entry: Mapping[str, Any], base_url: str) -> str:
    for url in _image_candidates(entry):
        absolute = parse._absolute(url, base_url)
        if absolute:
            return absolute
    return ""


def _image_candidates(entry: Mapping[str, Any]) -> Iterable[object]:
    contents = [m for m in entry.get("media_content") or [] if isinstance(m, dict)]
    for media in contents:
        if parse._looks_like_image(media):
            yield media.get("url")
    for media in contents:
        yield media.get("thumbnail_url")
    for enclosure in entry.get("enclosures") or []:
        if isinstance(enclosure, dict) and parse._looks_like_image(enclosure):
            yield enclosure.get("url")
