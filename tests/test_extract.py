"""Article extraction: hidden text, charsets, metadata, worker timeouts, real-page quality."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trafilatura

from aggregator.extract import PAGE_FIELDS, _metadata, decode_html, extract_page
from aggregator.extract_worker import extract_in_worker, shutdown_workers
from aggregator.text import html_to_text, parse_html, remove_hidden

FIXTURES = Path(__file__).parent / "fixtures" / "parse"
ARTICLE_URL = "https://gazette.example.com/2024/03/bridge"
HIDDEN_MARKERS = (
    "HIDDEN-COMMENT", "HIDDEN-DISPLAY-NONE", "HIDDEN-ATTRIBUTE", "HIDDEN-ARIA",
    "HIDDEN-VISIBILITY", "HIDDEN-NOSCRIPT", "HIDDEN-SCRIPT", "HIDDEN-STYLE",
)  # fmt: skip


# --- our fixtures ----------------------------------------------------------------------------


def test_hidden_text_never_reaches_the_extracted_text() -> None:
    html = (FIXTURES / "hidden_article.html").read_bytes()
    # The fixture must exercise our removal: trafilatura on its own lets hidden text through.
    raw = trafilatura.extract(html.decode("utf-8")) or ""
    assert any(marker in raw for marker in HIDDEN_MARKERS)

    page = extract_page(html, ARTICLE_URL)
    assert page is not None
    for marker in HIDDEN_MARKERS:
        assert marker not in page.text
    assert "ignore previous instructions" not in page.text.lower()
    assert "eight months of repairs" in page.text
    assert "separate lane on the bridge" in page.text


def test_metadata_of_the_fixture_article() -> None:
    page = extract_page((FIXTURES / "hidden_article.html").read_bytes(), ARTICLE_URL)
    assert page is not None
    assert page.title == "Harbour bridge reopens after repairs"
    assert page.author == "Alex Reporter"
    assert page.published == datetime(2024, 3, 5, 8, 15, tzinfo=UTC)  # +01:00 -> UTC
    assert page.language == "en-GB"
    assert page.image == "https://gazette.example.com/images/bridge.jpg"  # made absolute


def test_only_the_metadata_asked_for_is_looked_for() -> None:
    """A crawl asks only for what the feed left out; the rest comes back empty, the text and
    language always, and each field asked for is the one a full extraction finds."""
    html = (FIXTURES / "hidden_article.html").read_bytes()
    full = extract_page(html, ARTICLE_URL)
    assert full is not None and full.author and full.image and full.published and full.title
    nothing = extract_page(html, ARTICLE_URL, want=())
    assert nothing == replace(full, title="", author="", published=None, image="")
    for field in PAGE_FIELDS:
        page = extract_page(html, ARTICLE_URL, want={field})
        assert page is not None and page.text == full.text and page.language == full.language
        for other in PAGE_FIELDS:
            expected = getattr(full, other) if other == field else getattr(nothing, other)
            assert getattr(page, other) == expected, (field, other)


def test_remove_hidden_keeps_the_tails_and_drops_nested_hidden_parts() -> None:
    """Comments inside hidden elements, hidden elements inside hidden ones, a processing
    instruction: all go, and the text after each stays where it was."""
    tree = parse_html(
        "<html><body><p>one <!-- c1 -->two <span hidden>x<!-- c2 --><b style='display:none'>"
        "y</b></span>three <?pi z?>four <i aria-hidden=' TRUE '>w</i>five "
        "<span hidden='until-found'>found</span> <input type='HIDDEN' value='v'>six "
        "<em style='color: red'>seven</em></p></body></html>"
    )
    assert tree is not None
    remove_hidden(tree)
    assert " ".join(tree.text_content().split()) == "one two three four five found six seven"
    assert not tree.xpath("//comment() | //processing-instruction() | //*[@hidden='']")
    hidden_root = parse_html("<html hidden><body><p>gone</p></body></html>")
    assert hidden_root is not None
    remove_hidden(hidden_root)
    assert hidden_root.text_content() == ""


def test_without_byline_the_author_comes_from_meta_tags_and_json_ld_only() -> None:
    """A crawl skips the byline search in the page's text (no output shows an author, and the
    search cost 6 % of the bench's page extraction: 0.73 of 12 CPU s for 439 pages, where 148
    pages asked for an author their meta tags lacked); it keeps the author the meta tags or
    JSON-LD name, which cost nothing more, and the text is the same."""
    body = "".join(f"<p>Paragraph {n} of the story about the harbour bridge cables.</p>" * 3
                   for n in range(8))  # fmt: skip
    byline_only = (
        "<html><head><title>Bridge</title></head><body><article><h1>Bridge</h1>"
        f"<p class='byline'>By Maria Okafor</p>{body}</article></body></html>"
    )
    searched = extract_page(byline_only, ARTICLE_URL, want={"author"})
    skipped = extract_page(byline_only, ARTICLE_URL, want={"author"}, byline=False)
    assert searched is not None and skipped is not None
    assert searched.author == "Maria Okafor"
    assert skipped.author == "" and skipped.text == searched.text
    in_meta = byline_only.replace("</head>", '<meta name="author" content="Ann Lee"></head>')
    in_json = byline_only.replace(
        "</head>",
        '<script type="application/ld+json">{"@context": "https://schema.org", "@type": '
        '"NewsArticle", "author": {"@type": "Person", "name": "Ann Lee"}}</script></head>',
    )
    for html in (in_meta, in_json):
        page = extract_page(html, ARTICLE_URL, want={"author"}, byline=False)
        assert page is not None and page.author == "Ann Lee"


def test_paragraphs_are_separated_by_blank_lines() -> None:
    page = extract_page((FIXTURES / "hidden_article.html").read_bytes(), ARTICLE_URL)
    assert page is not None
    paragraphs = page.text.split("\n\n")
    assert len(paragraphs) >= 4
    assert all(p.strip() == p and "\n" not in p for p in paragraphs)


def test_a_page_inside_a_form_keeps_its_text_and_drops_the_widgets() -> None:
    # ASP.NET pages wrap everything in one <form>; trafilatura keeps a form that holds most of
    # the text and drops small ones (search, newsletter). Our parser gives every element,
    # forms and inputs too, lxml.html's element class, whose text_content() that relies on.
    paragraphs = [
        f"Paragraph {n} of the council report says the harbour bridge needs new cables, "
        "and that the work will close one lane for eight months from the spring."
        for n in range(1, 7)
    ]
    body = "".join(f"<p>{text}</p>" for text in paragraphs)
    html = (
        "<html><head><title>Council report</title></head><body>"
        '<form id="aspnetForm" action="/page.aspx"><input type="hidden" name="__VIEWSTATE" '
        'value="HIDDEN-VIEWSTATE"><div id="main"><h1>Council report on the bridge</h1>'
        f"<article>{body}</article></div>"
        '<form action="/search"><label for="q">SEARCH-LABEL</label><input id="q" name="q">'
        "<select><option>SEARCH-OPTION</option></select><textarea>SEARCH-TEXTAREA</textarea>"
        "<button>SEARCH-BUTTON</button></form></form></body></html>"
    ).encode()
    page = extract_page(html, ARTICLE_URL)
    assert page is not None
    for text in paragraphs:
        assert text in page.text
    assert "SEARCH-" not in page.text and "HIDDEN-VIEWSTATE" not in page.text


def test_meta_charset_is_honoured() -> None:
    page = extract_page((FIXTURES / "cp1252_article.html").read_bytes())
    assert page is not None
    assert page.title == "Café culture — a review"
    assert "crème brûlée and naïve “deconstructed” coffee — at €4 a cup" in page.text


def test_utf8_page_with_a_stale_legacy_label_is_read_as_utf8() -> None:
    html = (
        '<html><head><meta charset="gb2312"><title>新电脑</title></head>'
        "<body><p>DeepMind新电脑已可利用记忆自学 — café</p></body></html>"
    ).encode()
    assert "DeepMind新电脑已可利用记忆自学 — café" in decode_html(html)


def test_decoding_without_a_label() -> None:
    assert decode_html("<p>naïve</p>".encode()) == "<p>naïve</p>"
    assert decode_html(b"\xef\xbb\xbf<p>bom</p>") == "<p>bom</p>"
    assert decode_html("<p>naïve</p>".encode("utf-16")) == "<p>naïve</p>"


def test_str_input_is_accepted() -> None:
    html = (FIXTURES / "cp1252_article.html").read_bytes().decode("cp1252")
    page = extract_page(html)
    assert page is not None and "crème brûlée" in page.text


@pytest.mark.parametrize(
    "html",
    [b"", b"   ", b"<html><body></body></html>", b"<html><body><!-- only --></body></html>"],
)
def test_nothing_usable_gives_none(html: bytes) -> None:
    assert extract_page(html, ARTICLE_URL) is None


def test_absurd_dates_are_dropped() -> None:
    body = "<p>" + "Plenty of ordinary article text to extract here. " * 10 + "</p>"
    for when in ("2199-01-01T00:00:00Z", "1970-01-01T00:00:00Z"):
        html = f'<html><head><meta property="article:published_time" content="{when}"></head>'
        page = extract_page(f"{html}<body><article>{body}</article></body></html>")
        assert page is not None
        assert page.published is None or page.published.year not in (2199, 1970)


def test_deeply_nested_page_keeps_its_text() -> None:
    # Past libxml2's default limit of 256 levels; trafilatura's cost grows with the square of
    # the depth, which is what the worker deadline is for.
    html = "<html><body>" + "<div>" * 1000 + "<p>deep text</p>" + "</div>" * 1000 + "</body></html>"
    page = extract_page(html)
    assert page is not None and page.text == "deep text"


# --- worker processes ------------------------------------------------------------------------


@pytest.fixture
def workers() -> Iterator[None]:
    yield
    shutdown_workers()


def _huge_page(paragraphs: int) -> bytes:
    body = "".join(
        f"<p>Paragraph {i} says something new about item {i * 7} in words {i} again.</p>"
        for i in range(paragraphs)
    )
    return f"<html><body><article>{body}</article></body></html>".encode()


def test_worker_returns_the_same_page_as_in_process(workers: None) -> None:
    html = (FIXTURES / "hidden_article.html").read_bytes()
    assert extract_in_worker(html, ARTICLE_URL, timeout=60) == extract_page(html, ARTICLE_URL)


def test_worker_timeout_returns_none_and_the_next_call_still_works(workers: None) -> None:
    html = (FIXTURES / "hidden_article.html").read_bytes()
    assert extract_in_worker(html, ARTICLE_URL, timeout=60) is not None  # pool warmed up

    started = time.perf_counter()
    assert extract_in_worker(_huge_page(60_000), "https://huge.example.com/", timeout=0.2) is None
    assert time.perf_counter() - started < 10  # the caller is released, not held by the page

    page = extract_in_worker(html, ARTICLE_URL, timeout=60)
    assert page is not None and page.title == "Harbour bridge reopens after repairs"


def test_worker_errors_become_none(workers: None) -> None:
    assert extract_in_worker(b"", ARTICLE_URL, timeout=60) is None


# --- quality on real pages -------------------------------------------------------------------


def _tokens(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text.lower()))


def token_f1(got: str, expected: str) -> float:
    """Bag-of-words F1 between our text and the expected text."""
    ours, theirs = _tokens(got), _tokens(expected)
    common = sum((ours & theirs).values())
    if not common:
        return 0.0
    precision, recall = common / sum(ours.values()), common / sum(theirs.values())
    return 2 * precision * recall / (precision + recall)


@pytest.mark.shared
def test_the_metadata_steps_give_what_trafilatura_extract_metadata_gives(
    shared_data: Path,
) -> None:
    """extract.py runs extract_metadata's steps for the fields it needs only; on every page of
    Readability's test suite they give extract_metadata's title, author, date and image (a
    trafilatura release that changes those steps fails here, not silently)."""
    root = shared_data / "extraction" / "readability_test_pages"
    url = "http://fakehost/test/page.html"
    pages = sorted(p / "source.html" for p in root.iterdir() if p.is_dir())
    assert len(pages) == 130
    fields = frozenset({"title", "author", "published", "image"})
    found = Counter[str]()
    for path in pages:
        tree = parse_html(decode_html(path.read_bytes()))
        assert tree is not None
        remove_hidden(tree)
        ours = _metadata(tree, url, fields)
        theirs = trafilatura.extract_metadata(
            tree, url, {"original_date": True, "extensive_search": False}
        )
        for name in ("title", "author", "date", "image"):
            assert ours[name] == getattr(theirs, name), (path.parent.name, name)
            found[name] += bool(ours[name])
        # asked for neither title nor author, it skips the JSON-LD, which sets no other field
        assert _metadata(tree, url, frozenset({"image"})) == {"image": ours["image"]}
        assert _metadata(tree, url, frozenset({"image", "published"})) == {
            "image": ours["image"],
            "date": ours["date"],
        }
    # the comparison is not between empty fields: most pages have each of them
    assert min(found.values()) >= 50, found


@pytest.mark.shared
def test_extraction_quality_on_readability_pages(shared_data: Path) -> None:
    root = shared_data / "extraction" / "readability_test_pages"
    sample = sorted(p for p in root.iterdir() if p.is_dir())[::4]  # 33 of 130, deterministic
    scores: dict[str, float] = {}
    titles_matching = 0
    for folder in sample:
        page = extract_page((folder / "source.html").read_bytes(), "http://fakehost/test/page.html")
        expected = html_to_text((folder / "expected.html").read_text(encoding="utf-8"))
        scores[folder.name] = token_f1(page.text if page else "", expected)
        metadata = json.loads((folder / "expected-metadata.json").read_text(encoding="utf-8"))
        want = " ".join((metadata.get("title") or "").split()).lower()
        titles_matching += page is not None and " ".join(page.title.split()).lower() == want
    mean = sum(scores.values()) / len(scores)
    # Measured 0.967 on this sample (0.946 on all 130 pages); pinned a little below.
    assert mean >= 0.95, sorted(scores.items(), key=lambda kv: kv[1])[:5]
    assert titles_matching >= 0.75 * len(sample)  # measured 28 of 33
