"""feedparser's own test suite, checked on OUR records.

/work/shared/data/feeds/feedparser_tests/EXPECTATIONS.tsv holds, for each of feedparser's test
files, a Python expression over feedparser's result ("not bozo and entries[0]['title'] ==
u'Example'"). We evaluate each expression against a view of our ParsedFeed that speaks
feedparser's names for the facts we keep (feed title, link, language; entry title, link, id,
summary/description/content, author, dates), with feedparser's value turned into what our
records hold: plain text (HTML converted by reference_text below, not by the html_to_text under
test; whitespace collapsed), aware-UTC dates. An expression that reaches a fact we do not keep
is not applicable; EXCLUDED below lists, with the reason, every group and file that does not
apply or whose expectation we deliberately do not meet.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import lxml.etree
import lxml.html
import pytest

from aggregator.errors import NotAFeedError
from aggregator.parse import parse_feed
from aggregator.records import FeedItem, ParsedFeed

NOW = datetime(2030, 1, 1, tzinfo=UTC)  # no test date is in the future of this clock

# Whole groups (path prefixes) that never apply, and why.
EXCLUDED_GROUPS: dict[str, str] = {
    "wellformed/sanitize/": "feedparser's HTML sanitiser output: we never publish feed HTML; "
    "summaries are plain text (html_to_text drops scripts, styles, hidden elements), so only the "
    "title/summary text could be compared, and the expectations are about which markup survives",
    "wellformed/cdf/": "Microsoft's Channel Definition Format (1997): not a format we read; "
    "parse_feed says 'not a feed'",
    "illformed/chardet/": "needs the chardet package to guess an undeclared encoding; we do not "
    "guess (feedparser without chardet, which is our setup, reads these differently)",
}
# Keys of feedparser's result we do not keep: an expression reaching one is not applicable.
KEPT_FEED_KEYS = {"title": "title", "link": "link", "language": "language"}
KEPT_ENTRY_KEYS = (
    "title",
    "link",
    "id",
    "guid",
    "summary",
    "description",
    "content",
    "author",
    "published_parsed",
    "updated_parsed",
    "issued_parsed",
    "modified_parsed",
    "created_parsed",
    "date_parsed",
)
# Expressions about the parse itself rather than a fact on a record.
NOT_FACTS = {
    "bozo": "feedparser's bozo flag: we raise NotAFeedError or return records, nothing between",
    "encoding": "the detected encoding name: we keep the decoded text, checked where titles are",
    "version": "the format name is ParsedFeed.format, but we do not promise feedparser's names",
    "namespaces": "namespace prefixes are parser internals",
    "headers": "HTTP headers are the fetcher's business",
}
# A document without entries that is also not well-formed XML (the entities/ group: an HTML
# entity XML does not define, in a channel title). feedparser keeps the channel's title; we say
# "not a feed", since such a document gives us nothing to store.
NO_ENTRIES_ERROR = "no entries and not well-formed XML: parse_feed says 'not a feed'"
# An entry holding nothing but the element under test (an author, a category, a geo point): we
# drop entries without a title, link, id or text, so there is no record to check.
EMPTY_ENTRY = "an entry with no title, link, id or text: we keep no record of it"
# Single files whose expectation we deliberately do not meet, and why.
_ONE_TEXT = "we keep one text per entry (the longer of description/summary and content)"
_DOC_URI = (
    "a relative URI resolved against the document's own address, which feedparser's test "
    "server supplies; the crawler passes it as url= (see tests/test_parse.py)"
)
EXCLUDED_FILES: dict[str, str] = {
    "wellformed/rss/item_description_and_summary.xml": _ONE_TEXT,
    "wellformed/rss/item_summary_and_description.xml": _ONE_TEXT,
    "wellformed/atom10/entry_content_and_summary.xml": _ONE_TEXT,
    "wellformed/base/http_channel_link_base_docuri.xml": _DOC_URI,
    "wellformed/base/http_entry_id_base_docuri.xml": _DOC_URI,
    "wellformed/lang/http_content_language.xml": "the HTTP Content-Language header: the fetcher "
    "does not pass it on; a feed's own language element or xml:lang is what we keep",
}


class NotKept(Exception):
    """The expression reached a fact our records do not keep."""


class Plain(str):
    """One of our one-line plain-text values (titles, links, ids, authors).

    It equals feedparser's value as we store it: converted from HTML, or, where feedparser said
    the value is text (a title containing "<blink>"), as it is; the expectation does not say
    which, so either form matches.
    """

    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and str(self) in self.forms(other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __contains__(self, other: object) -> bool:
        return isinstance(other, str) and any(form in str(self) for form in self.forms(other))

    @staticmethod
    def forms(value: str) -> set[str]:
        return {one_line(reference_text(value)), one_line(value)}


class PlainText(Plain):
    """A summary: paragraphs kept, so feedparser's value is converted, not folded to a line."""

    __hash__ = str.__hash__

    @staticmethod
    def forms(value: str) -> set[str]:
        return {reference_text(value), plain_text(value)}


class Language(str):
    """Our BCP 47 tag in canonical case ("en-US"); feedparser keeps the feed's ("en-us")."""

    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.lower() == other.strip().lower()

    def __ne__(self, other: object) -> bool:
        return not self == other


# The expected text of feedparser's values is worked out here, not with aggregator.text: our
# records hold what its html_to_text made, and converting the expectations with it too would let
# a broken converter agree with itself.
_BLOCKS = ("p", "div", "blockquote", "pre", "li", "ul", "ol", "table", "tr", "h1", "h2", "h3")


def one_line(value: str) -> str:
    """Every run of whitespace one space."""
    return " ".join(value.split())


def plain_text(value: str) -> str:
    """Spaces collapsed and trimmed within each line, at most one blank line between two."""
    lines = (one_line(line) for line in value.replace("\r\n", "\n").split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def reference_text(value: str) -> str:
    """An HTML fragment as a reader sees it: lxml's text_content, with a line break for <br>
    and a blank line around block elements (<p>, <div>...), then plain_text."""
    try:
        root = lxml.html.fragment_fromstring(value, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return plain_text(value)
    for el in root.iter("br"):
        el.tail = "\n" + (el.tail or "")
    for el in root.iter(*_BLOCKS):
        el.text = "\n\n" + (el.text or "")
        el.tail = "\n\n" + (el.tail or "")
    return plain_text(str(root.text_content()))


class View(dict[str, Any]):
    """A feedparser-shaped dict over our values; a missing key means a fact we do not keep."""

    def __missing__(self, key: str) -> Any:
        raise NotKept(key)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self[key]
        raise NotKept(key)


def feed_view(feed: ParsedFeed) -> View:
    return View(title=Plain(feed.title), link=Plain(feed.link), language=Language(feed.language))


def entry_view(item: FeedItem) -> View:
    summary = PlainText(item.text)
    moment = item.published.utctimetuple() if item.published else None
    dates = {key: moment for key in KEPT_ENTRY_KEYS if key.endswith("_parsed")}
    return View(
        title=Plain(item.title),
        link=Plain(item.link),
        id=Plain(item.guid),
        guid=Plain(item.guid),
        summary=summary,
        description=summary,
        content=[View(value=summary)],
        author=Plain(item.author),
        **dates,
    )


def load_expectations(root: Path) -> list[dict[str, str]]:
    with (root / "EXPECTATIONS.tsv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _feedparser_entries(body: bytes) -> list[Any]:
    return list(feedparser.parse(io.BytesIO(body)).get("entries") or [])


def check(root: Path, row: dict[str, str]) -> tuple[str, str]:
    """("pass" | "fail" | "n/a", detail) for one expectation."""
    path = row["path"]
    for prefix, reason in EXCLUDED_GROUPS.items():
        if path.startswith(prefix):
            return "n/a", reason
    if path in EXCLUDED_FILES:
        return "n/a", EXCLUDED_FILES[path]
    expression = row["expect_python_expression"].strip()
    expression = expression.removeprefix("not bozo and ").strip()
    if expression in {"1", "True"}:
        return "n/a", "no expectation in the file (feedparser checks it in its test code)"
    first = expression.split()[0] if expression else ""
    for name, reason in NOT_FACTS.items():
        if first.startswith(name) or (name == "bozo" and "bozo" in expression):
            return "n/a", reason
    headers = dict(line.split(":", 1) for line in row["http_headers"].splitlines() if ":" in line)
    content_type = next((v.strip() for k, v in headers.items() if k.lower() == "content-type"), "")
    location = next((v.strip() for k, v in headers.items() if k.lower() == "content-location"), "")
    body = (root / path).read_bytes()
    try:
        parsed = parse_feed(body, url=location, content_type=content_type, now=NOW)
    except NotAFeedError as exc:
        if not _feedparser_entries(body):
            return "n/a", NO_ENTRIES_ERROR
        return "fail", f"NotAFeedError: {exc}"
    scope = {
        "feed": feed_view(parsed),
        "entries": [entry_view(item) for item in parsed.items],
        "time": time,
    }
    try:
        ok = eval(
            expression, {"__builtins__": {"len": len}}, scope
        )  # the expressions are data we ship
    except NotKept as exc:
        return "n/a", f"field not kept: {exc}"
    except IndexError:
        if len(_feedparser_entries(body)) > len(parsed.items):
            return "n/a", EMPTY_ENTRY
        return "fail", "no such entry"
    except Exception as exc:  # e.g. a name we do not provide
        return "n/a", f"not a record fact ({type(exc).__name__}: {exc})"
    return ("pass" if ok else "fail"), expression


def test_feedparser_expectations_hold_on_our_records(shared_data: Path) -> None:
    root = shared_data / "feeds" / "feedparser_tests"
    rows = load_expectations(root)
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    for row in rows:
        outcome, detail = check(root, row)
        outcomes[outcome] += 1
        if outcome == "fail":
            failures.append(f"{row['path']}: {detail}")
    print(f"feedparser expectations: {dict(outcomes)} of {len(rows)}")
    assert outcomes["pass"] >= 200, outcomes  # a harness that checks nothing must fail
    assert not failures, "\n".join(failures[:40]) + f"\n({len(failures)} failures)"


if __name__ == "__main__":  # pragma: no cover - a report for the maintainers
    pytest.main([__file__, "-q", "-s"])
