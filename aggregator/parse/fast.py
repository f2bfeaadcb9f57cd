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

import html
import html.entities
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastfeedparser import main as _ffp
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin

from aggregator.parse import common
from aggregator.records import MAX_NAME_CHARS, MAX_TITLE_CHARS, MAX_URL_CHARS, FeedItem, ParsedFeed
from aggregator.text import clean_text, html_to_text, language_tag
from aggregator.times import plausible

# Relative links resolved against xml:base: feedparser's rules are the reference.
_XML_BASE = re.compile(rb"xml:base\s*=")
_ABSOLUTE = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.-]*:")  # a scheme: http:, tag:, urn:...
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)""")
_UTF16_DECLARATION = re.compile(
    rb"""^(\s*<\?xml[^>]*?encoding\s*=\s*["'])utf-?16(?:[lb]e)?(["'])""", re.I
)
_UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.I)
_ENTRY_TAG = re.compile(rb"<(?:item|entry)[\s>]")
_LANGUAGE_TAG = re.compile(
    rb"<(?:dc:)?language>\s*(?:<!\[CDATA\[)?\s*([^<\]]{1,64}?)\s*(?:\]\]>)?\s*</"
)
# A title, summary or content that is base64 (mode="base64" or a type neither text nor XML).
_BINARY_CONTENT = re.compile(
    rb"<(?:title|summary|content|subtitle)\b[^>]*"
    rb"""(?:mode\s*=\s*["']base64|\btype\s*=\s*["'](?!text|html|xhtml|[^"']*xml))"""
)
_C1_REFERENCE = re.compile(rb"&#(?:0*(?:12[89]|1[34][0-9]|15[0-9])|[xX]0*[89][0-9A-Fa-f]);")
_NS_TITLE = re.compile(rb"<[A-Za-z0-9_]+:title[\s>]")
_TITLE_TAG = re.compile(rb"<title[\s>]")
_C1_CONTROL = re.compile(rb"\xc2[\x80-\x9f]")  # feedparser reads these as windows-1252
_LINK_TAG = re.compile(rb"<(?:[A-Za-z0-9_]+:)?link[\s>/]")
_ITUNES_IMAGE = re.compile(rb"<itunes:image[\s>/]")
_ITUNES_HREF = re.compile(
    rb"""<itunes:image\b[^>]*?\b(?:href\s*=\s*["']([^"']*)|url\s*=\s*["']([^"']*))"""
)
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_NEEDS_REPAIR = re.compile(
    rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|&(?!(?:lt|gt|amp|quot|apos|#[0-9]+|#[xX][0-9A-Fa-f]+);)"
)
# CDATA sections and comments (kept as they are) or a named entity XML does not define.
_REPAIRABLE = re.compile(
    rb"(<!\[CDATA\[.*?\]\]>|<!--.*?-->)|&(?!(?:lt|gt|amp|quot|apos);)([A-Za-z][A-Za-z0-9]{0,31});",
    re.S,
)
_NOT_PERMALINK = re.compile(rb"""isPermaLink\s*=\s*["']false""", re.I)
_GUID_TAG = re.compile(rb"<(?:guid|id)[\s>]")
_MEDIA_THUMBNAIL = re.compile(rb"<[A-Za-z0-9_]+:thumbnail[\s>/]")
# <media:thumbnail url="..."> with "media" bound to Media RSS (YouTube's channel feeds put one
# beside a media:content that is not an image; fastfeedparser does not report it).
_MEDIA_THUMBNAIL_URL = re.compile(
    rb"""<media:thumbnail\s(?:[^>]*?\s)?url\s*=\s*(?:"([^"]*)"|'([^']*)')"""
)
_MEDIA_RSS = re.compile(rb"""xmlns:media\s*=\s*["']http://search\.yahoo\.com/mrss/?["']""")
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
    body = _utf8_labelled(body)
    if not _plain_utf8(body, content_type) or _needs_feedparser(body):
        return None
    try:
        doc = _parse_strict(body)
    except Exception:  # any failure: feedparser has the last word (and the error message)
        return None
    if doc is None:
        return None
    entries = doc.get("entries") or []
    feed = doc.get("feed") or {}
    starts = [match.start() for match in _ENTRY_TAG.finditer(body)]
    if not entries or len(entries) != len(starts):
        return None  # none found, or some lost to a repair: feedparser decides
    feed_language = _feed_language(feed, body[: starts[0]])
    entries_part = body[starts[0] :]
    # Each entry's bytes, from its start tag to the next entry's, in entries_part.
    ends = [*starts[1:], len(body)]
    regions = [(a - starts[0], b - starts[0]) for a, b in zip(starts, ends, strict=True)]
    if b"<entry" in entries_part[:6] and _BINARY_CONTENT.search(entries_part):
        return None  # base64 content (Atom mode="base64", a binary type): feedparser decodes it
    if b":title" in entries_part and not _titles_first(entries_part, regions):
        return None  # fastfeedparser takes a media:title before <title>; feedparser <title>
    guids = len(_GUID_TAG.findall(entries_part))
    if 0 < guids < len(entries):
        return None  # some entries without a GUID: fastfeedparser reports their link as one
    # A literal test first: each search of a big document costs more than the test.
    thumbnails = b":thumbnail" in entries_part and bool(_MEDIA_THUMBNAIL.search(entries_part))
    media = _Media(
        thumbnails=thumbnails,
        # Every thumbnail a <media:thumbnail> of Media RSS: read from each entry's own bytes.
        readable_thumbnails=thumbnails and _plain_media_thumbnails(body, entries_part),
        descriptions=(
            b":description" in entries_part and bool(_MEDIA_DESCRIPTION.search(entries_part))
        ),
        xml_base=b"xml:base" in body and bool(_XML_BASE.search(body)),
    )
    # feedparser takes an entry's <itunes:image> as its image (the last resort of _image).
    itunes = (
        _itunes_images(entries_part, regions)
        if b"<itunes:image" in entries_part and _ITUNES_IMAGE.search(entries_part)
        else None
    )
    # fastfeedparser takes a GUID with isPermaLink="false" as the link; feedparser does not.
    non_permalinks = any(spelling in entries_part for spelling in (b"aLink", b"alink", b"ALINK"))
    items: list[FeedItem] = []
    for index, entry in enumerate(entries[: max(0, max_items)]):
        item = _item(
            entry,
            base_url=url,
            feed_language=feed_language,
            now=now,
            has_guid=guids > 0,
            raw=_RawEntry(entries_part, regions[index], non_permalinks),
            media=media,
            itunes_image=itunes[index] if itunes else "",
        )
        if item is None or not common.has_content(item):
            return None  # an empty entry: content fastfeedparser missed, or a broken shell
        items.append(item)
    return ParsedFeed(
        items=tuple(items),
        title=_title(feed.get("title"))[:MAX_TITLE_CHARS],
        link=common.feed_link(feed.get("link"), url),
        language=feed_language,
        format=_FORMATS.get(str(doc.get("version") or feed.get("type") or ""), ""),
    )


@dataclass(frozen=True)
class _RawEntry:
    """One entry's own bytes, asked what fastfeedparser does not report."""

    part: bytes  # the entries part of the document
    region: tuple[int, int]  # this entry's bytes in it
    non_permalinks: bool  # the document may hold isPermaLink="false" GUIDs

    def guid_is_link(self) -> bool:
        """feedparser's guidislink: the entry's GUID is not marked isPermaLink="false"."""
        return not (self.non_permalinks and _NOT_PERMALINK.search(self.part, *self.region))

    def media_thumbnails(self) -> list[str]:
        """The url of each <media:thumbnail> in the entry, in document order."""
        found = _MEDIA_THUMBNAIL_URL.findall(self.part, *self.region)
        return [html.unescape((a or b).decode("utf-8", "replace")) for a, b in found]

    def has_link(self, entry: Mapping[str, Any]) -> bool:
        """Whether the entry has a link of its own (not one fastfeedparser took from its GUID)."""
        if not entry.get("link"):
            return False
        if not self.non_permalinks or _LINK_TAG.search(self.part, *self.region):
            return True  # a <link> usually comes early: cheaper than the GUID's attributes
        return self.guid_is_link()


def _utf8_labelled(body: bytes) -> bytes:
    """A document declared UTF-16 without a NUL byte, relabelled UTF-8 as feedparser reads it."""
    head = body[:512]
    if b"\x00" in head:
        return body
    fixed = _UTF16_DECLARATION.sub(rb"\1utf-8\2", head, count=1)
    return body if fixed == head else fixed + body[512:]


def _needs_feedparser(body: bytes) -> bool:
    """Documents only feedparser reads as intended: DTD entities, Atom 0.3, C1 characters."""
    if b"<!ENTITY" in body or b"purl.org/atom/ns#" in body:
        return True  # entities declared in the document; Atom 0.3 (markup in plain text)
    return b"&#" in body and bool(_C1_REFERENCE.search(body))  # windows-1252 to feedparser


def _titles_first(entries_part: bytes, regions: list[tuple[int, int]]) -> bool:
    """True when every entry's <title> comes before any namespaced title (itunes:title...)."""
    for begin, end in regions:
        other = _NS_TITLE.search(entries_part, begin, end)
        if other is None:
            continue
        title = _TITLE_TAG.search(entries_part, begin, end)
        if title is None or other.start() < title.start():
            return False
    return True


def _itunes_images(entries_part: bytes, regions: list[tuple[int, int]]) -> list[str]:
    """The <itunes:image> URL of each entry (the last one in it, as feedparser), or ""."""
    images: list[str] = []
    for begin, end in regions:
        found = _ITUNES_HREF.findall(entries_part, begin, end)
        url = next((a or b for a, b in reversed(found) if a or b), b"")
        images.append(html.unescape(url.decode("utf-8", "replace")))
    return images


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
    doc = _parse_with_core(prepared)
    if doc is None and _NEEDS_REPAIR.search(prepared):
        repaired = repair_xml(prepared)
        if repaired != prepared:
            doc = _parse_with_core(repaired)
    return doc


def _parse_with_core(prepared: bytes) -> Mapping[str, Any] | None:
    doc: Mapping[str, Any] | None = _ffp._parse_with_core(
        prepared,
        include_content=True,
        include_tags=False,
        include_media=True,
        include_enclosures=True,
    )
    return doc


def repair_xml(body: bytes) -> bytes:
    """Make the usual faults of hand-made feeds well-formed, as feedparser reads them.

    Control characters are dropped (our text cleaning drops them anyway); outside CDATA
    sections and comments, an HTML entity such as "&colon;" or "&nbsp;" becomes its character
    reference, and an unknown name stays text. feedparser's lenient parser reads the original
    that way (tests/test_parse_fast.py compares). A bare "&" is left alone: that document stays
    malformed and goes to feedparser, which reads "Q&A" as "Q&A;".
    """
    return _REPAIRABLE.sub(_repair, _CONTROL_BYTES.sub(b"", body))


def _repair(match: re.Match[bytes]) -> bytes:
    name = match[2]
    if match[1] or name is None:
        return match[0]  # a CDATA section or comment stays as it is
    chars = html.entities.html5.get(name.decode("ascii") + ";")
    if chars is None:
        return b"&amp;" + name + b";"  # unknown: kept as text, as feedparser does
    return "".join(f"&#{ord(char)};" for char in chars).encode("ascii")


def _feed_language(feed: Mapping[str, Any], head: bytes) -> str:
    """The feed's <language> (fastfeedparser's native path drops it), else the root's xml:lang."""
    for pattern in (_LANGUAGE_TAG, _ROOT_LANG):
        match = pattern.search(head)
        if match:
            return language_tag(match[1].decode("utf-8", "replace"))
    return language_tag(feed.get("language"))


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
    return not _C1_CONTROL.search(body)  # U+0080-U+009F: windows-1252 to feedparser


@dataclass(frozen=True)
class _Media:
    """Which Media RSS elements the document's entries use."""

    thumbnails: bool  # <media:thumbnail>: an image fastfeedparser may not report
    readable_thumbnails: bool  # ... each one a Media RSS <media:thumbnail url="..."> (see _item)
    descriptions: bool  # <media:description>: a summary feedparser reads
    xml_base: bool  # xml:base somewhere: relative URLs resolve against it, not the feed URL


def _item(
    entry: Mapping[str, Any],
    *,
    base_url: str,
    feed_language: str,
    now: datetime,
    has_guid: bool,
    raw: _RawEntry,
    media: _Media,
    itunes_image: str,
) -> FeedItem | None:
    """One fastfeedparser entry -> FeedItem; None when the entry needs feedparser."""
    published = _published(entry, now)
    if published is _UNREADABLE:
        return None
    if not raw.has_link(entry):
        if entry.get("links"):
            return None  # only enclosures, related links...: feedparser's choice
        # feedparser: a permalink GUID is the link, else there is none
        entry = {**entry, "link": entry.get("id") if has_guid and raw.guid_is_link() else ""}
    contents = [m for m in entry.get("media_content") or [] if isinstance(m, dict)]
    # A thumbnail beside a media:content is not reported; feedparser's image may be it, so it
    # is read from the entry's bytes (feedparser's media_thumbnail, in document order).
    thumbnails: list[str] = []
    if media.thumbnails and contents and not any(_has_image(m) for m in contents):
        if not media.readable_thumbnails:
            return None
        thumbnails = raw.media_thumbnails()
    if media.descriptions and not any(m.get("description") for m in contents):
        return None  # a media:description outside media:content: not reported
    if media.xml_base and not _all_absolute(entry, thumbnails):
        return None  # feedparser resolves relative URLs against xml:base; we do not
    link = _link(entry, base_url) if entry.get("link") else ""
    if link is None:
        return None
    # Without any <guid>/<id>, fastfeedparser reports the link as the id; feedparser none.
    guid = clean_text(str(entry.get("id") or ""))[:MAX_URL_CHARS] if has_guid else ""
    if guid and base_url and not _ABSOLUTE.match(guid) and raw.guid_is_link():
        guid = _urljoin(base_url, guid)  # feedparser resolves a relative permalink GUID
    summary, summary_is_html = _summary(entry)
    return FeedItem(
        title=_title(entry.get("title"))[:MAX_TITLE_CHARS],
        link=link,
        guid=guid,
        summary=summary,
        summary_is_html=summary_is_html,
        published=published if isinstance(published, datetime) else None,
        author=_author(entry.get("author"))[:MAX_NAME_CHARS],
        language=_entry_language(entry) or feed_language,
        image=_image(entry, base_url, thumbnails) or common.feed_link(itunes_image, base_url),
    )


def _all_absolute(entry: Mapping[str, Any], thumbnails: Iterable[str] = ()) -> bool:
    """True when the entry's link, link hrefs, image URLs and id carry their own scheme."""
    urls: list[object] = [entry.get("link"), entry.get("id")]
    urls += [link.get("href") for link in entry.get("links") or [] if isinstance(link, dict)]
    urls += list(_image_candidates(entry, thumbnails))
    return all(_ABSOLUTE.match(url) for url in urls if isinstance(url, str) and url.strip())


def _has_image(media: Mapping[str, Any]) -> bool:
    return common.looks_like_image(media) or bool(media.get("thumbnail_url"))


def _title(value: object) -> str:
    """As common.plain_line on feedparser's value: HTML when it looks like HTML or has an "&"."""
    text = str(value or "")
    if "&" in text or ("<" in text and _looks_like_html(text)):
        text = html_to_text(text)
    return " ".join(clean_text(text).split())


def _author(value: object) -> str:
    """ "jane@example.org (Jane Doe)" -> "Jane Doe", as feedparser's author_detail name."""
    text = str(value or "")
    match = _EMAIL_AUTHOR.match(text)
    return common.plain_line(match[1] if match else text)


def _link(entry: Mapping[str, Any], base_url: str) -> str | None:
    """feedparser's link: the first alternate link; None when only feedparser can tell."""
    links = [link for link in entry.get("links") or [] if isinstance(link, dict)]
    alternates = [
        link.get("href") for link in links if (link.get("rel") or "alternate") == "alternate"
    ]
    if links and not alternates:
        return None  # only enclosures, related links...: fastfeedparser picks one, feedparser none
    for candidate in alternates or [entry.get("link")]:
        absolute = common.feed_link(candidate, base_url)
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
        return plausible(moment.astimezone(UTC).replace(microsecond=0), now)
    return None


def _summary(entry: Mapping[str, Any]) -> tuple[str, bool]:
    """As parse._summary: the longest of content, description and media description."""
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
    return value, "html" in kind or "xml" in kind


def _entry_language(entry: Mapping[str, Any]) -> str:
    for content in entry.get("content") or []:
        if isinstance(content, dict):
            tag = language_tag(content.get("language"))
            if tag:
                return tag
    return ""


def _plain_media_thumbnails(body: bytes, entries_part: bytes) -> bool:
    """True when "media" is Media RSS and every namespaced thumbnail is a <media:thumbnail>
    whose url the entry's bytes give plainly (no other prefix, no url feedparser reads
    differently)."""
    if not _MEDIA_RSS.search(body):
        return False
    tags = len(_MEDIA_THUMBNAIL.findall(entries_part))
    return (
        tags
        == entries_part.count(b"<media:thumbnail")
        == len(_MEDIA_THUMBNAIL_URL.findall(entries_part))
    )


def _image(entry: Mapping[str, Any], base_url: str, thumbnails: Iterable[str] = ()) -> str:
    """feedparser's image: media:content images, media:thumbnails, image enclosures."""
    for url in _image_candidates(entry, thumbnails):
        absolute = common.feed_link(url, base_url)
        if absolute:
            return absolute
    return ""


def _image_candidates(entry: Mapping[str, Any], thumbnails: Iterable[str] = ()) -> Iterable[object]:
    contents = [m for m in entry.get("media_content") or [] if isinstance(m, dict)]
    for media in contents:
        if common.looks_like_image(media):
            yield media.get("url")
    for media in contents:
        yield media.get("thumbnail_url")
    yield from thumbnails  # those fastfeedparser did not report (read by _item)
    for enclosure in entry.get("enclosures") or []:
        if isinstance(enclosure, dict) and common.looks_like_image(enclosure):
            yield enclosure.get("url")
