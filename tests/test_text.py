"""Plain-text helpers: HTML to text, cleaning, sentence splitting."""

from __future__ import annotations

import random
import re
import time

import pytest

from aggregator.text import clean_text, html_to_text, split_sentences, utf8_without

# --- html_to_text ------------------------------------------------------------------------------


def test_blocks_become_paragraphs_and_br_a_line_break() -> None:
    html = "<div>Intro <b>bold</b> text<p>First&nbsp;para<br>second line</p><h2>Head</h2>tail</div>"
    assert html_to_text(html) == "Intro bold text\n\nFirst para\nsecond line\n\nHead\n\ntail"


def test_list_items_and_table_cells_are_separated() -> None:
    html = "<ul><li>one</li><li>two</li></ul><table><tr><td>a</td><td>b</td></tr></table>"
    assert html_to_text(html) == "one\n\ntwo\n\na b"


@pytest.mark.parametrize(
    "hidden",
    [
        '<span style="display:none">SECRET</span>',
        '<span style="DISPLAY : NONE !important">SECRET</span>',
        '<div style="visibility: hidden">SECRET</div>',
        "<p hidden>SECRET</p>",
        '<p aria-hidden="true">SECRET</p>',
        "<!-- SECRET -->",
        "<script>var SECRET = 1;</script>",
        "<style>.SECRET { color: red }</style>",
        "<noscript>SECRET</noscript>",
        "<template><p>SECRET</p></template>",
        "<svg><text>SECRET</text></svg>",
        '<iframe srcdoc="SECRET">SECRET</iframe>',
    ],
)
def test_hidden_content_is_removed_but_the_text_around_it_stays(hidden: str) -> None:
    text = html_to_text(f"<div>before {hidden} after</div>")
    assert "SECRET" not in text
    assert " ".join(text.split()) == "before after"


def test_nested_hidden_content_keeps_following_siblings() -> None:
    html = '<div style="display:none"><p>gone <b>too</b></p></div>kept<p>also kept</p>'
    assert html_to_text(html) == "kept\n\nalso kept"


def test_entities_decoded_and_whitespace_collapsed() -> None:
    assert html_to_text("Tom &amp; Jerry&#8217;s   \n\t show &lt;3") == "Tom & Jerry’s show <3"


def test_plain_text_input_passes_through() -> None:
    assert html_to_text("a < b and c > d") == "a < b and c > d"
    assert html_to_text("just   words\nhere") == "just words here"


def test_empty_and_comment_only_input() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<!-- nothing -->") == ""
    assert html_to_text("   ") == ""


def test_preformatted_text_keeps_its_lines() -> None:
    assert html_to_text("<pre>line one\nline two</pre>") == "line one\nline two"


def test_full_document_drops_head() -> None:
    html = "<html><head><title>T</title><style>p{}</style></head><body><p>Body</p></body></html>"
    assert html_to_text(html) == "Body"


def test_encoding_declaration_in_str_input_is_fine() -> None:
    html = '<?xml version="1.0" encoding="iso-8859-1"?><p>café</p>'
    assert html_to_text(html) == "café"


def test_deep_nesting_is_fast_and_keeps_later_text() -> None:
    html = "<p>before</p>" + "<div>" * 1500 + "deep" + "</div>" * 1500 + "<p>after</p>"
    started = time.perf_counter()
    text = html_to_text(html)
    assert time.perf_counter() - started < 2
    assert text == "before\n\ndeep\n\nafter"


def test_absurd_nesting_does_not_crash() -> None:
    html = "<div>" * 100_000 + "x" + "</div>" * 100_000
    assert isinstance(html_to_text(html), str)


# --- clean_text ----------------------------------------------------------------------------------


def test_clean_text_removes_control_characters_but_keeps_newlines() -> None:
    assert clean_text("a\x00b\x07c\x1b\u200bd\ufeff\nnext\x85line") == "abcd\nnext\nline"


# What parse_html and html_to_text drop before parsing: C0/C1 controls but \t \n \r, DEL,
# zero-width characters, BOM, U+FFFE/U+FFFF; and html_to_text's placeholders U+FDD0/U+FDD1.
_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200c\u200d\u2060\ufeff\ufffe\uffff"


@pytest.mark.parametrize("placeholders", [False, True])
def test_utf8_without_drops_the_control_characters_as_the_regex_does(placeholders: bool) -> None:
    """utf8_without works on UTF-8 bytes; it must give what a regex on the text gives, for
    every neighbour of each dropped character and any mix of 1- to 4-byte characters."""
    reference = re.compile("[" + _CONTROLS + ("\ufdd0\ufdd1" if placeholders else "") + "]")
    edges = [0x1FFF, 0x200A, 0x200B, 0x200C, 0x200D, 0x200E, 0x205F, 0x2060, 0x2061, 0xD800]
    edges += [0xDFFF, 0xFDCF, 0xFDD0, 0xFDD1, 0xFDD2, 0xFEFE, 0xFEFF, 0xFFFD, 0xFFFE, 0xFFFF]
    alphabet = [chr(c) for c in [*range(0x250), *edges, 0x10000, 0x1F600]]
    rng = random.Random(14)
    for size in (0, 1, 2, 3, 40, 2000):
        for _ in range(100):
            text = "".join(rng.choices(alphabet, k=size))
            expected = reference.sub("", text).encode("utf-8", "ignore")
            assert utf8_without(text, placeholders=placeholders) == expected, text
    assert utf8_without("a\x00b\x7fc\td") == b"abc\td"  # all ASCII: one translate
    kept = "\ufdd0x\ufdd1"
    assert utf8_without(kept, placeholders=placeholders) == (
        b"x" if placeholders else kept.encode()
    )


def test_clean_text_gives_what_plain_substitutions_give() -> None:
    """clean_text skips the line-break pattern when no such character is there and leaves a
    lone " " unmatched; on any mix of spaces, breaks and controls it must give what replacing
    every run and break gives."""
    spaces = re.compile("[ \t\f\v\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
    breaks = re.compile("\r\n?|[\u2028\u2029\x85]")
    controls = re.compile("[" + _CONTROLS + "]")

    def reference(text: str) -> str:
        text = spaces.sub(" ", controls.sub("", breaks.sub("\n", text)))
        text = "\n".join(line.strip() for line in text.split("\n"))
        return re.sub("\n{3,}", "\n\n", text).strip()

    alphabet = list("ab \t\f\v\r\n\x00\x85\u00a0\u1680\u2000\u200a\u200b\u2028\u2029\u202f\u3000")
    rng = random.Random(15)
    for size in (1, 2, 3, 8, 60):
        for _ in range(300):
            text = "".join(rng.choices(alphabet, k=size))
            assert clean_text(text) == reference(text), text


def test_clean_text_normalises_spaces_and_blank_lines() -> None:
    raw = "  one\u00a0 two\t\tthree  \r\n\r\n\r\n\n  four \u2003 five  "
    assert clean_text(raw) == "one two three\n\nfour five"


def test_clean_text_of_nothing() -> None:
    assert clean_text("") == ""
    assert clean_text("\x00\x01 \n \t") == ""


# --- split_sentences -----------------------------------------------------------------------------


def test_split_simple_sentences() -> None:
    text = "The vote passed. Critics objected! Will it last? Nobody knows."
    assert split_sentences(text) == [
        "The vote passed.",
        "Critics objected!",
        "Will it last?",
        "Nobody knows.",
    ]


def test_titles_initials_and_decimals_do_not_split() -> None:
    text = "Dr. Smith met Mr. John F. Kennedy Jr. at 3.5 p.m. on Main St. in Boston. It rained."
    assert split_sentences(text) == [
        "Dr. Smith met Mr. John F. Kennedy Jr. at 3.5 p.m. on Main St. in Boston.",
        "It rained.",
    ]


def test_initialisms_split_only_before_a_sentence_opener() -> None:
    text = "The U.S. economy grew. Exports rose in the U.S. The dollar fell."
    assert split_sentences(text) == [
        "The U.S. economy grew.",
        "Exports rose in the U.S.",
        "The dollar fell.",
    ]


def test_numeric_abbreviations() -> None:
    text = "See No. 5 and pp. 10-12 from Jan. 6 onwards. He said no. Then he left."
    assert split_sentences(text) == [
        "See No. 5 and pp. 10-12 from Jan. 6 onwards.",
        "He said no.",
        "Then he left.",
    ]


def test_quotes_and_brackets() -> None:
    text = '"We will win." Then she left. "Where?" he asked. (It was late.) Everyone slept.'
    assert split_sentences(text) == [
        '"We will win."',
        "Then she left.",
        '"Where?" he asked.',
        "(It was late.)",
        "Everyone slept.",
    ]


def test_curly_quotes_and_ellipsis() -> None:
    text = "He said “it is over.” The crowd… cheered. Wait... What happened?"
    assert split_sentences(text) == [
        "He said “it is over.”",
        "The crowd… cheered.",
        "Wait...",
        "What happened?",
    ]


def test_lowercase_continuation_and_urls_do_not_split() -> None:
    text = "Visit example.com for details. Version 2.0.1 shipped. e.g. this stays together."
    assert split_sentences(text) == [
        "Visit example.com for details.",
        "Version 2.0.1 shipped. e.g. this stays together.",
    ]


def test_paragraph_breaks_end_sentences() -> None:
    assert split_sentences("A headline without a stop\n\nBody text here. More.") == [
        "A headline without a stop",
        "Body text here.",
        "More.",
    ]


def test_cjk_and_caseless_scripts() -> None:
    assert split_sentences("東京は晴れ。大阪は雨！明日は？") == [
        "東京は晴れ。",
        "大阪は雨！",
        "明日は？",
    ]
    assert split_sentences("Привет. Как дела? Хорошо.") == ["Привет.", "Как дела?", "Хорошо."]


def test_split_nothing() -> None:
    assert split_sentences("") == []
    assert split_sentences("   \n\n ") == []
    assert split_sentences("no terminator at all") == ["no terminator at all"]


def test_sentences_rejoin_to_the_text() -> None:
    text = "One. Two three? Four, five! Six."
    assert " ".join(split_sentences(text)) == text
