"""Article HTML -> ExtractedPage (main text and metadata), with trafilatura.

Hidden text (display:none, the hidden attribute, aria-hidden, comments) is removed before
trafilatura sees the page, so it never reaches clustering or the LLM. extract_worker.py runs the
extraction in a reusable worker process with a deadline, so a page that makes the extractor
hang or blow up costs one article, never the run.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Collection
from datetime import datetime

import lxml.etree
import trafilatura
from htmldate import find_date
from trafilatura.metadata import (
    examine_meta,
    extract_author,
    extract_meta_json,
    extract_title,
    extract_url,
)

from aggregator.records import MAX_NAME_CHARS, MAX_TITLE_CHARS, PAGE_FIELDS, ExtractedPage
from aggregator.text import clean_text, one_line, parse_html, remove_hidden
from aggregator.times import parse_iso, plausible, utcnow
from aggregator.urls import absolute_url

log = logging.getLogger(__name__)


_META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([-\w.:]+)""", re.IGNORECASE | re.DOTALL
)
# Labels browsers decode as windows-1252 (WHATWG Encoding Standard). A <meta> naming UTF-16
# is read as UTF-8 (the meta itself could not be read otherwise); see _declared_charset.
_AS_CP1252 = frozenset({"iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "ascii",
                        "us-ascii", "windows-1252", "cp1252", "x-user-defined"})  # fmt: skip
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Meta tags holding a full publication timestamp; htmldate often gives only the day.
_DATE_META = ("article:published_time", "og:article:published_time", "og:published_time",
              "published_time", "article.published", "datepublished", "parsely-pub-date",
              "sailthru.date", "dc.date.issued", "dcterms.created", "date")  # fmt: skip
# Meta tags naming the article's title, in Readability's order of preference.
_TITLE_META = ("dc:title", "dcterm:title", "og:title", "weibo:article:title",
               "weibo:webpage:title", "title", "twitter:title")  # fmt: skip
_TITLE_SEPARATOR = re.compile(r"\s+(?:[|\-–—·»/\\]|::)\s+")
_JSONLD_DATE = re.compile(r'"datePublished"\s*:\s*"([^"]{8,40})"')


# --- decoding ---------------------------------------------------------------------------------


def decode_html(data: bytes) -> str:
    """Bytes -> str: BOM, then <meta charset>, then UTF-8, then a statistical guess."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, "replace")
    declared = _declared_charset(data[:8192])
    # A page saved as UTF-8 but still labelled with its old charset is common; valid UTF-8
    # with multibyte characters is practically never an accident of a legacy encoding.
    if declared and (declared == "utf-8" or not _is_utf8_with_non_ascii(data)):
        return data.decode(declared, "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return data.decode(_guess_encoding(data), "replace")


def _declared_charset(head: bytes) -> str | None:
    """The codec named by the page's <meta charset>, normalised; None if absent or unknown."""
    match = _META_CHARSET.search(head)
    if not match:
        return None
    label = match.group(1).decode("ascii", "ignore").strip().lower()
    if label in _AS_CP1252:
        return "cp1252"
    if label.startswith(("utf-16", "utf16")):
        return "utf-8"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def _is_utf8_with_non_ascii(data: bytes) -> bool:
    """True for valid UTF-8 that has at least one multibyte character."""
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _guess_encoding(data: bytes) -> str:
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    return best.encoding if best is not None else "cp1252"


# --- extraction -------------------------------------------------------------------------------


def extract_page(
    html: bytes | str,
    url: str = "",
    *,
    want: Collection[str] = PAGE_FIELDS,
    byline: bool = True,
) -> ExtractedPage | None:
    """Main text and metadata of an article page; None when nothing usable is found.

    ``want`` names the metadata (of PAGE_FIELDS) to look for; the others come back empty. A
    crawl asks only for what the feed left out. The author is the one the meta tags or JSON-LD
    name, else, with ``byline``, one found in the page's text by trafilatura's byline rules:
    that search alone is a seventh of a page's extraction."""
    try:
        return _extract(html, url, frozenset(want), byline)
    except Exception as exc:  # a broken page costs one article, never the run
        log.warning(
            "extraction failed for %s: %s: %s",
            url or "<page>",
            type(exc).__name__,
            exc,
            extra={"url": url},
        )
        return None


def _extract(
    html: bytes | str, url: str, want: frozenset[str], byline: bool
) -> ExtractedPage | None:
    text_html = decode_html(html) if isinstance(html, bytes) else html
    tree = parse_html(text_html)
    if tree is None:
        return None
    remove_hidden(tree)
    language, now = _page_language(tree), utcnow()
    precise_date = plausible(_meta_datetime(tree), now) if "published" in want else None
    title = _page_title(tree) if "title" in want else ""
    # what trafilatura's metadata must still find: the page's own title and full-timestamp
    # date are preferred (see _page_title, _meta_datetime); run before the text, as
    # trafilatura does (it extracts the text from a copy of the tree, and so does the author)
    need = want - {"title"} if title else want
    meta = _metadata(tree, url, need - {"published"} if precise_date else need, byline)
    doc = trafilatura.bare_extraction(
        tree, url=url or None, with_metadata=False, include_comments=False, include_tables=True
    )
    if doc is None:
        return None
    text = _paragraphs(getattr(doc, "text", None) or "")
    if not text:
        return None
    return ExtractedPage(
        text=text,
        title=one_line(title or meta.get("title"))[:MAX_TITLE_CHARS],
        author=one_line(meta.get("author"))[:MAX_NAME_CHARS],
        published=precise_date or plausible(_parse_date(meta.get("date")), now),
        language=language,
        image=absolute_url(meta.get("image"), url),
    )


def _metadata(
    tree: lxml.etree._Element, url: str, need: frozenset[str], byline: bool = True
) -> dict[str, str | None]:
    """trafilatura's metadata of the page, the fields named in ``need`` only ("published" is
    found as "date"); {} when none is. Without ``byline``, the author is only one that the
    meta tags or JSON-LD name.

    These are extract_metadata's own steps, in its order and with its clean-up, less the ones
    whose fields we never use (categories, tags, licence, site name) or did not ask for;
    tests/test_extract.py checks that they give what extract_metadata gives, on Readability's
    130 test pages."""
    if not need:
        return {}
    meta = examine_meta(tree)
    if meta.author and " " not in meta.author:  # as extract_metadata: one word is no author
        meta.author = None
    if need & {"title", "author"}:  # the only fields of ours that JSON-LD sets
        try:
            meta = extract_meta_json(tree, meta)
        except Exception:  # as extract_metadata does: its JSON-LD reader has bugs
            log.debug("JSON-LD metadata of %s could not be read", url or "<page>")
    if "title" in need:
        meta.title = meta.title or extract_title(tree)
    if "author" in need and byline:
        meta.author = meta.author or extract_author(tree)
    if "published" in need:
        meta.date = find_date(
            tree,
            url=meta.url or extract_url(tree, url or None),
            # extensive search falls back to dateparser, which costs seconds per page; the
            # meta tags _meta_datetime reads and htmldate's quick pass find news pages' dates
            original_date=True,
            extensive_search=False,
        )
    meta.clean_and_trim()  # extract_metadata's own clean-up of every field
    named = {"title": "title", "author": "author", "image": "image", "published": "date"}
    return {slot: getattr(meta, slot) for field, slot in named.items() if field in need}


def _page_title(tree: lxml.etree._Element) -> str:
    """The title the publisher declares (meta tags, then <title>); "" to let trafilatura pick.

    On Mozilla's Readability test pages this order (with the suffix rule below) finds the
    expected title far more often than trafilatura's choice, the first <h1>; tests/test_extract.py
    pins a floor.
    """
    metas: dict[str, str] = {}
    for meta in tree.iter("meta"):
        key = (meta.get("property") or meta.get("name") or "").strip().lower()
        content = one_line(meta.get("content"))
        if key in _TITLE_META and content and key not in metas:
            metas[key] = content
    for key in _TITLE_META:
        if key in metas:
            return metas[key]
    element = tree.find(".//title")
    return _strip_site_name(tree, one_line(element.text_content())) if element is not None else ""


def _strip_site_name(tree: lxml.etree._Element, title: str) -> str:
    """Drop a " | Site" suffix from a <title>, but only when the page confirms it.

    Confirmed means: the part before the separator is also the page's <h1>/<h2>, or the part
    after it is the og:site_name. Headlines like "Ukraine war - live" keep their tail.
    """
    parts = _TITLE_SEPARATOR.split(title)
    if len(parts) < 2:
        return title
    head = title[: title.rfind(parts[-1])].rstrip(" |-–—·:»/\\")
    site_names = {
        one_line(meta.get("content")).lower()
        for meta in tree.iter("meta")
        if (meta.get("property") or meta.get("name") or "").lower() == "og:site_name"
    }
    if parts[-1].strip().lower() in site_names:
        return head
    headings = {one_line(h.text_content()).lower() for h in tree.iter("h1", "h2")}
    return head if head.lower() in headings else title


def _paragraphs(text: str) -> str:
    """trafilatura puts one paragraph per line; we separate paragraphs by blank lines."""
    lines = [line for line in clean_text(text).split("\n") if line.strip()]
    return "\n\n".join(lines)


def _page_language(tree: lxml.etree._Element) -> str:
    """<html lang>, else Content-Language or og:locale meta, as a BCP 47-looking tag."""
    candidates = [tree.get("lang"), tree.get("{http://www.w3.org/XML/1998/namespace}lang")]
    candidates += [  # lxml's C tag filter: 0.16 ms a page against 0.26 for the same XPath query
        meta.get("content")
        for meta in tree.iter("meta")
        if (meta.get("http-equiv") or "").lower() == "content-language"
        or meta.get("property") == "og:locale"
    ]
    for value in candidates:
        tag = str(value or "").strip().replace("_", "-").split(",")[0].strip()
        if re.fullmatch(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*", tag):
            primary, *rest = tag.split("-")
            return "-".join([primary.lower(), *(s.upper() if len(s) == 2 else s for s in rest)])
    return ""


def _meta_datetime(tree: lxml.etree._Element) -> datetime | None:
    """A full publication timestamp from meta tags or JSON-LD, when the page gives one."""
    for meta in tree.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        if key in _DATE_META:
            moment = _parse_date(meta.get("content"))
            if moment is not None:
                return moment
    for script in tree.iter("script"):
        if "ld+json" in (script.get("type") or "") and script.text:
            match = _JSONLD_DATE.search(script.text)
            if match:
                return _parse_date(match.group(1))
    return None


def _parse_date(value: object) -> datetime | None:
    """An ISO 8601 date or timestamp -> aware UTC (naive values are taken as UTC)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None
