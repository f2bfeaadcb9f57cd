"""Plain-text helpers shared by the parser, the extractor and the summariser.

``html_to_text`` turns markup into readable paragraphs with hidden content dropped, so text
that a reader never sees (display:none, the hidden attribute, comments, scripts) never reaches
clustering or the LLM. ``split_sentences`` is a rule-based splitter for the extractive summariser.
"""

from __future__ import annotations

import re

import lxml.etree
import lxml.html

from aggregator.settings import LANGUAGE_PATTERN

# C0/C1 control characters (except \t and \n), DEL, zero-width and BOM characters, and the
# Unicode non-characters U+FFFE/U+FFFF: invisible noise that breaks XML feeds and dedup.
_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200c\u200d\u2060\ufeff\ufffe\uffff]"
)
# Horizontal whitespace, including no-break and typographic spaces. clean_text makes each run
# of it one " ": the runs to change are those of two or more, or of one that is not " "; a lone
# " ", most of a text's spaces, is not matched, which makes the substitution three times faster.
_SPACE_CLASS = "\t\f\v\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"  # and " "
_SPACE_RUNS = re.compile(f" [ {_SPACE_CLASS}]+|[{_SPACE_CLASS}][ {_SPACE_CLASS}]*")
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85]")
_LINE_BREAK_CHARS = ("\r", "\u2028", "\u2029", "\x85")
# written with a literal "\n\n\n" prefix, which re searches for directly: \n{3,} is tested at
# every character, four times slower on the item texts of 200 feeds
_MANY_NEWLINES = re.compile(r"\n\n\n+")
_ANY_WHITESPACE = re.compile(r"\s+")

# Elements whose content is never shown as text.
_DROP_TAGS = frozenset(
    {"script", "style", "noscript", "template", "head", "iframe", "object", "embed", "svg",
     "canvas", "math", "select", "datalist", "button", "input", "textarea"}
)  # fmt: skip
# Elements that start a new paragraph (table cells are only separated by a space).
_BLOCK_TAGS = frozenset(
    {"address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
     "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
     "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html", "li", "main", "menu",
     "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot",
     "thead", "tr", "ul"}
)  # fmt: skip
_LANGUAGE_TAG = re.compile(LANGUAGE_PATTERN)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)

# Placeholders that survive whitespace collapsing and may stand in an lxml tree (which refuses
# control characters): two Unicode noncharacters, removed from the input first.
# How every HTML document is parsed. huge_tree lifts libxml2's nesting limit of 256, past
# which it silently drops the rest of the page; the fetcher already caps what we parse.
_PARSING = {"remove_comments": True, "remove_pis": True, "no_network": True, "huge_tree": True}

_PARAGRAPH = "\ufdd0"
_LINE = "\ufdd1"

# _CONTROL's characters in UTF-8, for utf8_without: the ASCII ones are single bytes, the others
# begin with one of three lead bytes, and a pattern that starts with a literal byte is searched
# for that byte first (and skipped when it is absent), far faster than a class tested at every
# character. UTF-8 is self-synchronising, so these bytes occur only as those characters.
_ASCII_CONTROL_BYTES = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_C2_CONTROLS = re.compile(rb"\xc2[\x80-\x9f]")  # U+0080-U+009F
_E2_CONTROLS = re.compile(rb"\xe2(?:\x80[\x8b-\x8d]|\x81\xa0)")  # U+200B-U+200D, U+2060
_EF_CONTROLS = re.compile(rb"\xef(?:\xbb\xbf|\xbf[\xbe\xbf])")  # U+FEFF, U+FFFE, U+FFFF
_EF_UNWANTED = re.compile(rb"\xef(?:\xbb\xbf|\xbf[\xbe\xbf]|\xb7[\x90\x91])")  # and U+FDD0/1


def utf8_without(text: str, *, placeholders: bool = False) -> bytes:
    """``text`` as UTF-8 without _CONTROL's characters (nor, with ``placeholders``, _PARAGRAPH
    and _LINE), lone surrogates dropped: ``_CONTROL.sub("", text).encode("utf-8", "ignore")``.

    On Readability's 130 test pages that regex and the encoding took 0.8-0.9 ms a page, about
    3 % of an extraction; this takes 0.35-0.4 ms (tests/test_text.py checks the two agree)."""
    data = text.encode("utf-8", "ignore").translate(None, _ASCII_CONTROL_BYTES)
    if data.isascii():
        return data
    ef = _EF_UNWANTED if placeholders else _EF_CONTROLS
    for lead, pattern in ((b"\xc2", _C2_CONTROLS), (b"\xe2", _E2_CONTROLS), (b"\xef", ef)):
        if lead in data:
            data = pattern.sub(b"", data)
    return data


def clean_text(s: str) -> str:
    """Drop control characters, collapse spaces, trim lines, keep at most one blank line."""
    if any(char in s for char in _LINE_BREAK_CHARS):  # rare: a scan for each is quicker
        s = _LINE_BREAKS.sub("\n", s)
    s = _CONTROL.sub("", s)
    s = _SPACE_RUNS.sub(" ", s)
    s = "\n".join(line.strip() for line in s.split("\n"))
    return _fewer_newlines(s).strip()


def one_line(value: object) -> str:
    """Text as one line: control characters dropped, every run of whitespace one space."""
    return " ".join(clean_text(str(value or "")).split())


def shorten(text: str, limit: int) -> str:
    """Text cut to at most ``limit`` characters with an ellipsis, at a word boundary when near."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ""
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space > limit * 0.8:
        head = head[:space]
    return head.rstrip() + "…"


def is_hidden(el: lxml.etree._Element) -> bool:
    """True when an element is hidden from readers by its attributes or inline style."""
    hidden = el.get("hidden")
    if hidden is not None and hidden.strip().lower() != "until-found":
        return True
    if (el.get("aria-hidden") or "").strip().lower() == "true":
        return True
    if el.tag == "input" and (el.get("type") or "").lower() == "hidden":
        return True
    return bool(_HIDDEN_STYLE.search(el.get("style") or ""))


def remove_hidden(root: lxml.etree._Element) -> None:
    """Remove comments, processing instructions and hidden elements, keeping their tails.

    Only the elements _HIDDEN_CANDIDATES selects (an attribute that can hide them) cost a
    Python call; a Python test of every element took 0.9 ms a page on Readability's test
    pages, 3 % of an extraction, and this 0.4 ms."""
    if isinstance(root.tag, str) and is_hidden(root):
        root.clear()
        return
    # lxml's C tag filter finds the comments and processing instructions; where one of them
    # sits inside a hidden element, dropping either first leaves the same text in place
    doomed = list(root.iter(lxml.etree.Comment, lxml.etree.ProcessingInstruction))
    doomed += [el for el in _HIDDEN_CANDIDATES(root) if is_hidden(el)]
    for el in doomed:
        _drop_keep_tail(el)


def _drop_keep_tail(el: lxml.etree._Element) -> None:
    """Detach an element; its tail text stays in the document."""
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail
    if tail:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(el)


# lxml.html's own lookup picks each element's class in Python (a form, an input, a label get
# classes of their own), a call every time the extractor touches an element: 4 to 8 % of an
# extraction. This one is lxml's C lookup, with lxml.html's element class for every element,
# so text_content() and drop_tree() work as before; trafilatura uses no form-specific method.
_HTML_CLASSES = lxml.etree.ElementDefaultClassLookup(
    element=lxml.html.HtmlElement,
    comment=lxml.html.HtmlComment,
    pi=lxml.html.HtmlProcessingInstruction,
    entity=lxml.html.HtmlEntity,
)


def parse_html(html: str | bytes, encoding: str | None = None) -> lxml.etree._Element | None:
    """Parse (possibly broken) HTML into an element tree of lxml.html elements; None for an
    empty document."""
    if isinstance(html, str):
        # lxml refuses str input with an encoding declaration; UTF-8 bytes always work.
        data = utf8_without(html)
        encoding = "utf-8"
    else:
        data = html
    if not data.strip():
        return None
    parser = lxml.html.HTMLParser(encoding=encoding, **_PARSING)
    parser.set_element_class_lookup(_HTML_CLASSES)
    try:
        return lxml.html.document_fromstring(data, parser=parser)
    except (lxml.etree.ParserError, ValueError):
        return None


def element_to_text(root: lxml.etree._Element) -> str:
    """Text of an already parsed tree: blocks become paragraphs, <br> a line break.

    The tree is consumed (hidden parts removed, markers written into its text). The work per
    element happens in lxml's C code (its tag filters, one XPath for hidden candidates, the
    text serialiser): only the elements that need an edit cost a Python step.
    """
    if is_hidden(root) or not isinstance(root.tag, str) or root.tag in _DROP_TAGS:
        return ""
    doomed = list(root.iter(*_DROP_TAGS))
    doomed += [el for el in _HIDDEN_CANDIDATES(root) if is_hidden(el)]
    for el in doomed:
        _drop_keep_tail(el)  # a child of an element dropped before goes with it, harmlessly
    for pre in root.iter("pre"):
        for el in pre.iter():
            if el.text and "\n" in el.text:
                el.text = el.text.replace("\n", _LINE)
            if el is not pre and el.tail and "\n" in el.tail:
                el.tail = el.tail.replace("\n", _LINE)
    for el in root.iter("td", "th"):
        el.text = " " + (el.text or "")
    for el in root.iter("br"):
        el.tail = _LINE + (el.tail or "")
    for el in root.iter(*_BLOCK_TAGS):
        el.text = _PARAGRAPH + (el.text or "")
        if el is not root:
            el.tail = _PARAGRAPH + (el.tail or "")
    end = _PARAGRAPH if root.tag in _BLOCK_TAGS else ""
    # The tree's text as libxml2 serialises it, in one string: the same text as joining
    # itertext(), without a Python string per text node (2.7x faster).
    text = lxml.etree.tostring(root, method="text", encoding="unicode", with_tail=False)
    # clean_text's work, in the order that needs the fewest passes over the text: control
    # characters out, every run of whitespace one space (str.split knows the same whitespace
    # as the regular expressions above), then paragraphs and lines, trimmed.
    text = " ".join(_CONTROL.sub("", text + end).split())
    text = text.replace(_PARAGRAPH, "\n\n").replace(_LINE, "\n")
    text = text.replace(" \n", "\n").replace("\n ", "\n")
    return _fewer_newlines(text).strip()


def _fewer_newlines(text: str) -> str:
    """At most one blank line in a row. The literal test first: the regular expression scans
    every character, ten times slower than the test (0.15 s over the item text of 200 feeds)."""
    return _MANY_NEWLINES.sub("\n\n", text) if "\n\n\n" in text else text


# Elements that may be hidden by an attribute (is_hidden decides), in document order: found in
# one XPath pass that selects the attributes and goes to their elements, twice as fast as
# testing every element with a predicate ("descendant::*[@hidden or ...]"), the same nodes.
_HIDDEN_CANDIDATES = lxml.etree.XPath(
    "(descendant::*/@hidden | descendant::*/@aria-hidden | descendant::*/@style"
    " | descendant::input/@type)/.."
)


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML document or fragment, hidden content removed."""
    if "<" not in html and "&" not in html:
        return clean_text(_ANY_WHITESPACE.sub(" ", html))
    data = utf8_without(html, placeholders=True)
    if not data.strip():
        return ""
    # lxml.etree's own elements, not lxml.html's: the walk then makes no Python call per
    # element (lxml.html looks up each element's class in Python), a third of the time.
    parser = lxml.etree.HTMLParser(encoding="utf-8", **_PARSING)
    try:
        root = lxml.etree.fromstring(data, parser)
    except (lxml.etree.ParserError, lxml.etree.XMLSyntaxError, ValueError):
        return ""
    return "" if root is None else element_to_text(root)


def language_tag(value: object) -> str:
    """A BCP 47-looking tag ("en-US"), or "" for anything else."""
    tag = str(value or "").strip().replace("_", "-")
    if not _LANGUAGE_TAG.match(tag):
        return ""
    primary, *rest = tag.split("-")
    # Canonical BCP 47 case: "en-US", "zh-Hant-TW".
    subtags = [s.upper() if len(s) == 2 else s.title() if len(s) == 4 else s.lower() for s in rest]
    return "-".join([primary.lower(), *subtags])


# --- sentences --------------------------------------------------------------------------------

# Abbreviations after which a period never ends a sentence (titles, "e.g.", "St. Louis").
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "mx", "dr", "prof", "sr", "jr", "st", "mt", "ft", "gen", "gov", "sen",
     "rep", "col", "lt", "sgt", "capt", "cmdr", "adm", "maj", "rev", "hon", "pres", "supt",
     "insp", "messrs", "mme", "mlle", "vs", "v", "cf", "approx", "al", "e.g", "i.e", "viz",
     "dept", "univ", "assn", "bros", "ave", "blvd", "bzw", "usw", "vgl", "ggf", "z.b", "d.h",
     "u.a", "sra", "sres", "gov't"}
)  # fmt: skip
# Abbreviations that end no sentence when a number follows ("No. 5", "Jan. 6", "pp. 3-4").
_NUMERIC_ABBREVIATIONS = frozenset(
    {"no", "nos", "nr", "vol", "vols", "pp", "p", "fig", "figs", "ch", "sec", "art", "op",
     "tel", "ref", "ca", "s", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
     "oct", "nov", "dec"}
)  # fmt: skip
# Words that usually open a sentence: after "U.S." or "a.m." they signal a real boundary.
_SENTENCE_STARTERS = frozenset(
    {"a", "an", "the", "he", "she", "it", "they", "we", "i", "you", "but", "and", "in", "on",
     "this", "that", "these", "those", "there", "his", "her", "its", "their", "our", "my",
     "if", "when", "while", "after", "before", "as", "at", "for", "however", "meanwhile",
     "yet", "so", "some", "many", "most", "no", "not", "one", "what", "why", "how", "who",
     "officials", "police", "according"}
)  # fmt: skip
_TERMINATOR = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)|[。！？]+[」』”’）)]*|[।؟]+")
_INITIALISM = re.compile(r"(?:[A-Za-z]\.){2,}$")
_OPENERS = "\"'“‘«([¿¡"


def split_sentences(text: str) -> list[str]:
    """Split text into sentences; paragraphs (newlines) always end a sentence."""
    sentences: list[str] = []
    for paragraph in clean_text(text).split("\n"):
        if paragraph.strip():
            sentences.extend(_split_paragraph(paragraph))
    return sentences


def _split_paragraph(paragraph: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _TERMINATOR.finditer(paragraph):
        end = match.end()
        if _is_boundary(paragraph, match.start(), end):
            piece = paragraph[start:end].strip()
            if piece:
                pieces.append(piece)
            start = end
    rest = paragraph[start:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def _is_boundary(text: str, term_start: int, term_end: int) -> bool:
    """Decide whether the terminator at text[term_start:term_end] ends a sentence."""
    terminator = text[term_start:term_end]
    if terminator[0] in "。！？।؟":
        return True
    following = text[term_end:].lstrip()
    if not following:
        return True
    if not _starts_sentence(following):
        return False
    if not terminator.startswith(".") or terminator.startswith(".."):
        return True  # "!", "?" and an ellipsis before a capital end the sentence
    word = _word_before(text, term_start)
    bare = word.lstrip(_OPENERS).lower()
    if bare in _ABBREVIATIONS:
        return False
    if bare in _NUMERIC_ABBREVIATIONS and following[0].isdigit():
        return False
    if len(bare) == 1 and bare.isalpha():
        return False  # an initial, as in "John F. Kennedy"
    if _INITIALISM.search(bare + "."):
        # "U.S." ends a sentence only when a typical sentence opener follows it.
        next_word = following.split(maxsplit=1)[0].strip(_OPENERS).lower()
        return next_word in _SENTENCE_STARTERS
    return True


def _word_before(text: str, index: int) -> str:
    """The whitespace-delimited word ending at text[index] (without the terminator)."""
    begin = max(text.rfind(" ", 0, index), text.rfind("\n", 0, index)) + 1
    return text[begin:index]


def _starts_sentence(following: str) -> bool:
    """True when text after a terminator can open a new sentence (not lowercase)."""
    first = following.lstrip(_OPENERS + "-–— ")
    if not first:
        return False
    ch = first[0]
    if ch.islower():
        return False
    return ch.isalnum() or following[0] in _OPENERS
