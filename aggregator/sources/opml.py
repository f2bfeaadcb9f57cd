"""OPML 2.0 subscription lists: read feeds out of one safely, write sources into one.

Reading never expands entities, loads a DTD or touches the network (lxml with those turned off),
so a hostile file cannot blow up memory or read local files. Outlines without ``xmlUrl`` are
folders (their text becomes the category of the feeds inside) or are skipped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING

from lxml import etree

from aggregator.errors import OpmlError

if TYPE_CHECKING:
    from aggregator.sources.load import Config

MAX_OPML_BYTES = 20_000_000  # a subscription list; anything larger is not one
_OPML_START = re.compile(rb"<opml\b", re.I)
_TAG = re.compile(r"<(/?)outline\b(.*?)(/?)>(?=\s*(?:<|\Z))", re.S)
_ATTR = re.compile(r'([A-Za-z_:][-\w:.]*)="(.*?)"(?=\s+[A-Za-z_:][-\w:.]*=|\s*/?\s*\Z)', re.S)
_BARE_AMPERSAND = re.compile(rb"&(?!#[0-9]+;|#x[0-9a-fA-F]+;|[A-Za-z][A-Za-z0-9._-]*;)")


@dataclass(frozen=True)
class OpmlFeed:
    """One feed outline."""

    url: str  # xmlUrl: the feed
    title: str = ""  # title, else text
    html_url: str = ""  # htmlUrl: the site's home page
    category: str = ""  # the category attribute, else the innermost enclosing folder's text
    language: str = ""  # a ``language`` attribute (written by our export; not OPML 2.0 core)


def safe_xml_parser(recover: bool = False) -> etree.XMLParser:
    """The lxml parser read_opml uses: no entity expansion, DTD, network, comments or PIs."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        recover=recover,
    )


def read_opml(data: bytes) -> list[OpmlFeed]:
    """Every feed outline in document order; raise OpmlError for a file that is not OPML."""
    if len(data) > MAX_OPML_BYTES:
        raise OpmlError(f"the file is larger than {MAX_OPML_BYTES:,} bytes")
    if not data.strip():
        raise OpmlError("the file is empty")
    root = _parse(data)
    if isinstance(root, list):
        if not root:
            raise OpmlError("not well-formed XML, and no feed outlines could be read from it")
        return root
    if root is None or _local(root.tag) != "opml":
        tag = "nothing" if root is None else f"<{_local(root.tag)}>"
        raise OpmlError(f"not an OPML document (the root element is {tag}, not <opml>)")
    body = next((el for el in root if _local(el.tag) == "body"), None)
    if body is None:
        raise OpmlError("the OPML document has no <body>")
    return list(_outlines(body, folder=""))


def _parse(data: bytes) -> etree._Element | list[OpmlFeed]:
    """Strict XML; then with bare ``&`` escaped (common in hand-made lists); then, for a file
    that is still broken (quotes inside attribute values...), a tolerant scan of its outlines."""
    try:
        return etree.fromstring(data, safe_xml_parser())
    except etree.XMLSyntaxError as exc:
        first = exc
    repaired = _BARE_AMPERSAND.sub(b"&amp;", data)
    try:
        return etree.fromstring(repaired, safe_xml_parser())
    except etree.XMLSyntaxError:
        pass
    if not _OPML_START.search(data[:4096]):
        line = f"line {first.lineno}: " if first.lineno else ""
        raise OpmlError(f"{line}not well-formed XML: {first.msg}") from first
    return list(_scan(data))


def _scan(data: bytes) -> Iterator[OpmlFeed]:
    """Outlines of a broken file, read tag by tag; folders are tracked by open/close tags."""
    text = data.decode("utf-8", errors="replace")
    folders: list[str] = []
    for match in _TAG.finditer(text):
        closing, inner, self_closing = match.groups()
        if closing:
            if folders:
                folders.pop()
            continue
        attrs = {k.lower(): html.unescape(v).strip() for k, v in _ATTR.findall(inner)}
        label = attrs.get("title") or attrs.get("text") or ""
        folder = next((f for f in reversed(folders) if f), "")
        if attrs.get("xmlurl"):
            yield _feed(attrs, label, folder)
        if not self_closing:
            folders.append(label)


def _feed(attrs: dict[str, str], label: str, folder: str) -> OpmlFeed:
    return OpmlFeed(
        url=attrs["xmlurl"],
        title=label,
        html_url=attrs.get("htmlurl", ""),
        category=_category(attrs.get("category", "")) or folder,
        language=attrs.get("language", ""),
    )


def _outlines(parent: etree._Element, folder: str) -> Iterator[OpmlFeed]:
    for el in parent:
        if not isinstance(el.tag, str) or _local(el.tag) != "outline":
            continue
        attrs = {_local(k).lower(): (v or "").strip() for k, v in el.attrib.items()}
        label = attrs.get("title") or attrs.get("text") or ""
        if attrs.get("xmlurl"):
            yield _feed(attrs, label, folder)
        yield from _outlines(el, folder=label or folder)


def _category(value: str) -> str:
    """OPML's category is comma-separated slash-paths ("/News/World,/Europe"): the first leaf."""
    first = value.split(",")[0].strip()
    return first.strip("/").rsplit("/", 1)[-1].strip()


def _local(tag: object) -> str:
    text = str(tag)
    return text.rsplit("}", 1)[-1] if "}" in text else text


@dataclass(frozen=True)
class ExportFeed:
    """What export needs of a source (aggregator.sources.Source fits)."""

    url: str
    name: str
    category: str = ""
    language: str = ""


def write_opml(
    feeds: Iterable[ExportFeed], title: str = "aggregator sources", now: datetime | None = None
) -> bytes:
    """An OPML 2.0 document: feeds in folder outlines named after their category."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateCreated").text = format_datetime(
        (now or datetime.now(UTC)).astimezone(UTC), usegmt=True
    )
    body = etree.SubElement(root, "body")
    folder: etree._Element | None = None
    for feed in feeds:
        # consecutive feeds of one category share a folder, so the order survives a round trip
        if not feed.category:
            folder = None
        elif folder is None or folder.get("text") != feed.category:
            folder = etree.SubElement(body, "outline", text=feed.category)
            folder.set("title", feed.category)
        outline = etree.SubElement(body if folder is None else folder, "outline", type="rss")
        outline.set("text", feed.name)
        outline.set("title", feed.name)
        outline.set("xmlUrl", feed.url)
        if feed.language:
            outline.set("language", feed.language)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def export_opml(config: Config) -> bytes:
    """Every source of a loaded sources file as OPML 2.0, titled with settings.title."""
    feeds = (
        ExportFeed(url=s.url, name=s.name, category=s.category, language=s.language)
        for s in config.sources
    )
    return write_opml(feeds, title=config.settings.title)
