"""The fast parsing path (aggregator.parse_fast) against the feedparser path.

Every record the fast path makes must be the one feedparser's path makes; where fastfeedparser
reads a document differently, the fast path must decline it (return None) so that feedparser
decides. Each guard has a document here that trips it, and the real-feed test compares the two
paths on every entry of 200 real feeds.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.errors import NotAFeedError
from aggregator.parse import parse_feed
from aggregator.parse.fast import parse_fast, repair_xml
from aggregator.parse.reference import parse_with_feedparser
from aggregator.records import FeedItem, ParsedFeed
from tests.support.parse_agreement import agreement

NOW = datetime(2026, 3, 1, tzinfo=UTC)
URL = "https://blog.example.org/feed.xml"


def fast(body: bytes, content_type: str = "") -> ParsedFeed | None:
    return parse_fast(body, url=URL, content_type=content_type, max_items=500, now=NOW)


def assert_same_records(body: bytes, content_type: str = "") -> ParsedFeed:
    """parse_feed (whichever path) gives exactly the feedparser path's records."""
    ours = parse_feed(body, url=URL, content_type=content_type, now=NOW)
    reference = parse_with_feedparser(body, url=URL, content_type=content_type, now=NOW)
    assert [view(item) for item in ours.items] == [view(item) for item in reference.items]
    assert (ours.title, ours.link, ours.language) == (
        reference.title,
        reference.link,
        reference.language,
    )
    return ours


def view(item: FeedItem) -> tuple[object, ...]:
    """Every field as a reader gets it: the summary as text (the parsers keep markup as given)."""
    return (
        *(getattr(item, f.name) for f in fields(item) if not f.name.startswith("summary")),
        item.text,
    )


def rss(items: str, channel: str = "", declaration: str = '<?xml version="1.0"?>') -> bytes:
    return (
        f'{declaration}<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"'
        ' xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
        f"<channel><title>Blog</title><link>https://blog.example.org/</link>{channel}"
        f"{items}</channel></rss>"
    ).encode()


ITEM = "<item><title>{}</title><link>https://x.example/{}</link><guid>g{}</guid></item>"


PLAIN_ITEM = """<item>
<title>Fish &amp;amp; chips &lt;b&gt;now&lt;/b&gt; &#8211; #include &lt;/etc/x&gt;</title>
<link>/posts/1</link><guid>https://blog.example.org/posts/1</guid>
<author>jane@example.org (Jane Doe)</author>
<description><![CDATA[<p>Hello <span style="display:none">hidden</span>world</p>]]></description>
<pubDate>Mon, 16 Feb 2026 10:00:00 +0100</pubDate>
<media:content url="https://cdn.example.org/a.jpg" type="image/jpeg"/></item>"""


def test_plain_feed_takes_the_fast_path_with_identical_records() -> None:
    body = rss(PLAIN_ITEM * 3, channel="<language><![CDATA[en-gb]]></language>")
    assert fast(body) is not None
    feed = assert_same_records(body)
    item = feed.items[0]
    assert item.link == "https://blog.example.org/posts/1"
    assert item.author == "Jane Doe"
    assert item.language == "en-GB"
    assert item.text == "Hello world"
    assert item.published == datetime(2026, 2, 16, 9, 0, tzinfo=UTC)
    assert item.image == "https://cdn.example.org/a.jpg"


@pytest.mark.parametrize(
    ("name", "body", "content_type"),
    [
        (
            "xml:base",
            b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"'
            b' xml:base="https://other.example.net/dir/"><title>T</title><entry><title>A</title>'
            b'<id>urn:a</id><link href="a.html"/><updated>2026-02-01T00:00:00Z</updated>'
            b"</entry></feed>",
            "",
        ),
        (
            "legacy encoding",
            rss(
                "<item><title>Caf\u00e9</title><link>https://x.example/1</link></item>",
                declaration='<?xml version="1.0" encoding="iso-8859-1"?>',
            )
            .decode()
            .encode("latin-1"),
            "",
        ),
        (
            "charset header disagrees",
            rss("<item><title>Caf\u00e9</title><link>https://x.example/1</link></item>"),
            "application/rss+xml; charset=windows-1252",
        ),
        (
            "only an enclosure link",
            b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
            b'<entry><title>A</title><id>urn:a</id><link rel="enclosure" href="https://x.example/a.mp3"/>'
            b"</entry></feed>",
            "",
        ),
        (
            "some items without a guid",
            rss(
                "<item><title>A</title><link>https://x.example/1</link><guid>g1</guid></item>"
                "<item><title>B</title><link>https://x.example/2</link></item>"
            ),
            "",
        ),
        ("bare ampersand", rss(ITEM.format("Q&A", "1?a=1&b=2", 1)), ""),
        (
            "thumbnail beside media:content, under another prefix",
            rss(
                '<item xmlns:m="http://search.yahoo.com/mrss/"><title>A</title>'
                "<link>https://x.example/1</link><guid>g</guid><media:group>"
                '<media:content url="https://x.example/v.swf"'
                ' type="application/x-shockwave-flash"/>'
                '<m:thumbnail url="https://x.example/t.jpg"/>'
                "<media:description>What the video shows</media:description>"
                "</media:group></item>"
            ),
            "",
        ),
    ],
)
def test_documents_fastfeedparser_reads_differently_go_to_feedparser(
    name: str, body: bytes, content_type: str
) -> None:
    assert fast(body, content_type) is None, name
    assert_same_records(body, content_type)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("undefined entity", rss(ITEM.format("Re&colon; accounting &nbsp;&hellip;", 1, 1))),
        ("unknown entity", rss(ITEM.format("Fish &chips; &amp; more", 1, 1))),
        ("control character", rss(ITEM.format("Bad\x02 byte\x1b", 1, 1))),
        (
            "entity inside CDATA stays",
            rss(
                "<item><title><![CDATA[A &colon; B & C]]></title><link>https://x.example/1</link>"
                "<guid>g</guid><description><![CDATA[<p>x&nbsp;y &amp; z</p>]]></description>"
                "</item><item><title>D&amp;E &hellip;</title><link>https://x.example/2</link><guid>h</guid>"
                "</item>"
            ),
        ),
        (
            "guids that are not permalinks, no links",
            rss(
                '<item><title>A</title><guid isPermaLink="false">https://x.example/1</guid></item>'
                '<item><title>B</title><guid isPermaLink="false">rss-only-2</guid></item>'
            ),
        ),
        (
            "permalink guids, no links",
            rss(
                "<item><title>A</title><guid>https://x.example/1</guid></item>"
                '<item><title>B</title><guid isPermaLink="true">https://x.example/2</guid></item>'
            ),
        ),
        (
            "mixed guids, some links",
            rss(
                '<item><title>A</title><guid isPermaLink="false">https://x.example/1</guid></item>'
                "<item><title>B</title><guid>https://x.example/2</guid></item>"
                '<item><title>C</title><link>https://x.example/3</link><guid isPermaLink="false">'
                "c</guid></item>"
            ),
        ),
        (
            "items with neither link nor guid",
            rss(
                "<item><title>A</title><description>Only text</description></item>"
                "<item><title>B</title></item>"
            ),
        ),
        (
            "atom entry whose id stands in for the link",
            b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
            b"<entry><title>A</title><id>https://x.example/a#1 b</id>"
            b"<updated>2026-02-01T00:00:00Z</updated></entry></feed>",
        ),
        (
            "thumbnails beside a media:content that is no image (YouTube)",
            rss(
                "<item><title>A</title><link>https://x.example/1</link><guid>g</guid><media:group>"
                '<media:content url="https://x.example/v.swf"'
                ' type="application/x-shockwave-flash"/>'
                '<media:thumbnail url="https://x.example/t.jpg?s=1&amp;w=480" width="480"/>'
                "<media:thumbnail url='https://x.example/t2.jpg'/>"
                "<media:description>What the video shows</media:description>"
                "</media:group></item>"
                "<item><title>B</title><link>https://x.example/2</link><guid>h</guid><media:group>"
                '<media:content url="https://x.example/w.swf"'
                ' type="application/x-shockwave-flash"/>'
                "<media:description>No thumbnail here</media:description>"
                "</media:group></item>"
                "<item><title>C</title><link>https://x.example/3</link><guid>i</guid><media:group>"
                '<media:content url="https://x.example/x.swf"'
                ' type="application/x-shockwave-flash"/>'
                '<media:thumbnail data-url="https://x.example/not-it.jpg"'
                ' url="https://x.example/t3.jpg"/>'
                "<media:description>Its thumbnail after a data-url</media:description>"
                "</media:group></item>"
            ),
        ),
        (
            "itunes:image on items",
            rss(
                "<item><title>A</title><link>https://x.example/1</link><guid>g</guid>"
                '<itunes:image href="https://x.example/cover.jpg?a=1&amp;b=2"/></item>'
                "<item><title>B</title><link>https://x.example/2</link><guid>h</guid></item>"
                "<item><title>C</title><link>https://x.example/3</link><guid>i</guid>"
                '<itunes:image url="https://x.example/old.jpg"/>'
                '<itunes:image href="https://x.example/new.jpg"/></item>'
                "<item><title>D</title><link>https://x.example/4</link><guid>j</guid>"
                '<media:content url="https://x.example/m.jpg" type="image/jpeg"/>'
                '<itunes:image href="https://x.example/ignored.jpg"/></item>'
            ),
        ),
    ],
)
def test_documents_the_fast_path_reads_as_feedparser_does(name: str, body: bytes) -> None:
    """Faults it repairs and fields it reads itself: fast, and the same records."""
    assert fast(body) is not None, name
    assert_same_records(body)


def test_a_utf8_document_declared_utf16_is_read_as_utf8() -> None:
    """feedparser reads such a document as UTF-8, or (by byte count) as UTF-16 garbage."""
    doc = rss(ITEM.format("Café", 1, 1), declaration='<?xml version="1.0" encoding="UTF-16"?>\n')
    assert fast(doc) is not None
    assert parse_feed(doc, url=URL, now=NOW).items[0].title == "Café"
    assert_same_records(doc)  # this one feedparser reads as UTF-8 too
    odd = doc.replace(b"\n", b"")
    assert parse_feed(odd, url=URL, now=NOW).items[0].title == "Café"
    with pytest.raises(NotAFeedError):  # feedparser: "not well-formed (invalid token)"
        parse_with_feedparser(odd, url=URL, now=NOW)


def test_repairs_leave_cdata_and_comments_alone() -> None:
    body = b"<a>&nbsp;<![CDATA[&nbsp; & <b>]]><!-- & --> & &#1; &x\x01</a>"
    assert repair_xml(body) == b"<a>&#160;<![CDATA[&nbsp; & <b>]]><!-- & --> & &#1; &x</a>"


def test_without_the_guards_these_documents_would_differ() -> None:
    """The guards above are needed: fastfeedparser's own reading differs from feedparser's."""
    import fastfeedparser

    entity = rss("<item><title>Re&colon; accounting</title><link>https://x.example/1</link></item>")
    assert fastfeedparser.parse(entity).entries[0]["title"] != "Re: accounting"
    assert parse_feed(entity, url=URL, now=NOW).items[0].title == "Re: accounting"
    no_guid = rss("<item><title>B</title><link>https://x.example/2</link></item>")
    assert fastfeedparser.parse(no_guid).entries[0].get("id") == "https://x.example/2"
    assert parse_feed(no_guid, url=URL, now=NOW).items[0].guid == ""


def test_fast_path_agrees_with_feedparser_on_every_entry_of_200_real_feeds(
    shared_data: Path,
) -> None:
    folder = shared_data / "feeds" / "fastfeedparser" / "benchmark_data"
    result = agreement(sorted(folder.iterdir()))
    assert result.files == 200
    # Most documents take the fast path (fastfeedparser's native extractor still works).
    assert result.fast_files >= 150, result
    assert result.entries >= 4000, result
    assert result.percent >= 99.9, "\n".join(result.examples)
    # Lead images agree on every entry, YouTube's media:thumbnails included (read from bytes).
    assert "image" not in result.differing_fields, result.differing_fields
