"""The fast parsing path (aggregator.parse_fast) against the feedparser path.

Every record the fast path makes must be the one feedparser's path makes; where fastfeedparser
reads a document differently, the fast path must decline it (return None) so that feedparser
decides. Each guard has a document here that trips it, and the real-feed test compares the two
paths on every entry of 200 real feeds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.parse import parse_feed, parse_with_feedparser
from aggregator.parse_fast import parse_fast
from aggregator.records import ParsedFeed
from benchmarks.bench_parse import agreement

NOW = datetime(2026, 3, 1, tzinfo=UTC)
URL = "https://blog.example.org/feed.xml"


def fast(body: bytes, content_type: str = "") -> ParsedFeed | None:
    return parse_fast(body, url=URL, content_type=content_type, max_items=500, now=NOW)


def assert_same_records(body: bytes, content_type: str = "") -> ParsedFeed:
    """parse_feed (whichever path) gives exactly the feedparser path's records."""
    ours = parse_feed(body, url=URL, content_type=content_type, now=NOW)
    reference = parse_with_feedparser(body, url=URL, content_type=content_type, now=NOW)
    assert ours.items == reference.items
    assert (ours.title, ours.link, ours.language) == (
        reference.title,
        reference.link,
        reference.language,
    )
    return ours


def rss(items: str, channel: str = "", declaration: str = '<?xml version="1.0"?>') -> bytes:
    return (
        f'{declaration}<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"'
        ' xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
        f"<channel><title>Blog</title><link>https://blog.example.org/</link>{channel}"
        f"{items}</channel></rss>"
    ).encode()


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
    assert item.summary == "Hello world"
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
            "undefined entity",
            rss("<item><title>Re&colon; accounting</title><link>https://x.example/1</link></item>"),
            "",
        ),
        (
            "only an enclosure link",
            b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
            b'<entry><title>A</title><id>urn:a</id><link rel="enclosure" href="https://x.example/a.mp3"/>'
            b"</entry></feed>",
            "",
        ),
        (
            "guid that is not a permalink",
            rss(
                '<item><title>A</title><guid isPermaLink="false">https://x.example/1</guid></item>'
            ),
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
        (
            "thumbnail beside media:content",
            rss(
                "<item><title>A</title><link>https://x.example/1</link><guid>g</guid><media:group>"
                '<media:content url="https://x.example/v.swf"'
                ' type="application/x-shockwave-flash"/>'
                '<media:thumbnail url="https://x.example/t.jpg"/>'
                "<media:description>What the video shows</media:description>"
                "</media:group></item>"
            ),
            "",
        ),
        (
            "itunes:image on an item",
            rss(
                "<item><title>A</title><link>https://x.example/1</link><guid>g</guid>"
                '<itunes:image href="https://x.example/cover.jpg"/></item>'
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
