"""Checks on model output: plain text only, the answer's shape, quality gates (sentences, sources,
copies, headline) and grounding (numbers, names, quotes and words its cited articles contain)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aggregator.records import Article
from aggregator.text import split_sentences

# --- checking model output --------------------------------------------------------------------

_SCRIPT_BLOCK = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z!?/][^<>]*>?")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(
    r"(?:https?|ftp)://\S+|www\.\S+|(?:javascript|vbscript|data|file):\S+", re.IGNORECASE
)
_CITE_MARK = re.compile(r"\[\s*\d+(?:\s*[,;–-]\s*\d+)*\s*\]")  # "[1]" or "[1, 2]" in the text
_MD_EMPHASIS = re.compile(r"\*\*|__|`+|^\s*(?:#+|>|[-*•])\s+", re.MULTILINE)
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_THOUSANDS = re.compile(r"[.,](?=\d{3}(?!\d))")
_TOKEN = re.compile(r"\w+", re.UNICODE)


def plain_text(text: str) -> str:
    """Model text with markup, links, URLs and inline citation marks removed."""
    text = html.unescape(text)  # "&lt;b&gt;" must not survive as markup either
    text = _SCRIPT_BLOCK.sub(" ", text)
    text = _TAG.sub(" ", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _CITE_MARK.sub(" ", text)
    text = _MD_EMPHASIS.sub(" ", text)
    text = re.sub(r"\(\s*\)", " ", text)  # what is left of "(https://...)"
    text = " ".join(text.split())
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text).strip()


def numbers(text: str) -> set[str]:
    """Numbers in text, normalised: "1,200" and "1.200" are 1200, "2,5" is 2.5."""
    return {_THOUSANDS.sub("", n).replace(",", ".") for n in _NUMBER.findall(text)}


def unsupported_numbers(sentence: str, sources: Sequence[Article]) -> set[str]:
    """Numbers in the sentence that none of the sources' titles or texts contain."""
    known: set[str] = set()
    for article in sources:
        known |= numbers(f"{article.title}\n{article.text}")
    return numbers(sentence) - known


class AnswerSentence(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str = Field(min_length=1, max_length=1200)
    citations: list[int] = Field(min_length=1, max_length=20)


class ModelAnswer(BaseModel):
    """The JSON the prompt asks for; extra keys are ignored, missing ones are an error."""

    model_config = ConfigDict(extra="ignore")
    headline: str = Field(min_length=1, max_length=1000)
    sentences: list[AnswerSentence] = Field(min_length=1, max_length=6)


class AnswerItem(BaseModel):
    """A talking point, perspective ("who"), timeline entry ("date") or why-it-matters line."""

    model_config = ConfigDict(extra="ignore")
    text: str = Field(max_length=1200)
    citations: list[int] = Field(default_factory=list, max_length=20)
    who: str = Field("", max_length=300)
    date: str = Field("", max_length=100)


# The items a model answer may carry beside its sentences, and how many of each are kept.
ITEM_LIMITS = {"talking_points": 5, "perspectives": 5, "timeline": 8, "why_it_matters": 1}


def answer_items(raw: Mapping[str, object], kind: str) -> tuple[list[AnswerItem], int]:
    """The items of ``raw[kind]`` that have an item's shape, and how many did not.

    Items are optional: an answer without them is still a summary, and a malformed item is
    dropped alone. ``why_it_matters`` is one item (or null); the others are lists.
    """
    value = raw.get(kind)
    if kind == "why_it_matters":
        value = [value] if value else []
    if not isinstance(value, list):
        return [], int(value is not None)
    items: list[AnswerItem] = []
    malformed = 0
    for entry in value[: 2 * ITEM_LIMITS[kind]]:
        try:
            items.append(AnswerItem.model_validate(entry))
        except ValidationError:
            malformed += 1
    return items, malformed


def first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "answer"
    return f"wrong shape at {where}: {error['msg']}"


# --- quality gates: does the answer read like a summary of the whole story? ---------------------


@dataclass(frozen=True)
class Failure:
    """Why a model answer (or one of its sentences) was not accepted."""

    reason: str  # a short stable name, counted by reason in the run report: "one_source"
    detail: str  # for people and for the corrective retry: what was wrong, what to do instead


HEADLINE_LIMIT = 120  # characters of an LLM headline (the prompt asks for at most 120)
MIN_SENTENCES, MAX_SENTENCES = 2, 4  # for a story with two or more distinct sources
# Token-level similarity (difflib's ratio 2*M/T over lowercased words) at which a sentence counts
# as a copy of a source sentence. Against a 15-word source sentence: verbatim is 1.0, two words
# changed 0.87, three words cut 0.89; a sentence that keeps a source's first 10 words and drops
# its last clause (5 words) is 0.80, one that rewords or merges facts 0.75 or less
# (tests/test_summarise.py, test_copy_similarity_threshold).
COPY_SIMILARITY = 0.85


def headline_failure(headline: str) -> Failure | None:
    """The headline (already plain text) is empty or longer than ``HEADLINE_LIMIT``."""
    if not headline:
        return Failure("headline_empty", "the headline is empty (after removing markup)")
    if len(headline) > HEADLINE_LIMIT:
        return Failure(
            "headline_too_long",
            f"the headline has {len(headline)} characters; write at most {HEADLINE_LIMIT}",
        )
    return None


def sentence_count_failure(count: int, sources: int, dropped: str = "") -> Failure | None:
    """2-4 sentences for a story with two or more distinct sources, 1-4 for one source.

    ``dropped`` says which sentences the grounding checks removed, for the failure's detail.
    """
    least = MIN_SENTENCES if sources >= 2 else 1
    if count > MAX_SENTENCES:
        return Failure(
            "too_many_sentences",
            f"your answer has {count} sentences; write {least} to {MAX_SENTENCES}",
        )
    if count < least:
        why = f" (dropped: {dropped})" if dropped else ""
        return Failure(
            "too_few_sentences",
            f"your answer has {count} usable sentence(s){why}; this story has {sources} "
            f"sources: write {least} to {MAX_SENTENCES} sentences that combine them",
        )
    return None


def source_coverage_failure(cited_sources: Iterable[str], sources: int) -> Failure | None:
    """A story with two or more distinct sources: the citations must cover at least two."""
    cited = set(cited_sources)
    if sources >= 2 and len(cited) < 2:
        return Failure(
            "one_source",
            f"your answer cited only one source of the story's {sources}; cite at least two "
            "different sources, each sentence citing the articles that support it",
        )
    return None


def copy_similarity(a: str, b: str) -> float:
    """difflib's ratio over lowercased word tokens: 1.0 for the same words in the same order."""
    return _copy_ratio(_tokens(a), _tokens(b), 0.0)


def sentence_copy_failure(
    index: int, sentence: str, articles: Sequence[Article], threshold: float = COPY_SIMILARITY
) -> Failure | None:
    """Sentence ``index`` (from 1) is nearly word for word a sentence (or the title) of one of
    the articles; the failure names the article for the corrective retry."""
    tokens = _tokens(sentence)
    if not tokens:
        return None
    for number, article in enumerate(articles, 1):
        for source in _source_sentences(article.title, article.text):
            if _copy_ratio(tokens, source, threshold) >= threshold:
                return Failure(
                    "copied_sentence",
                    f"sentence {index} copies a sentence of article {number} nearly word for "
                    "word; write your own sentences that combine what the sources say",
                )
    return None


def copy_failure(
    sentences: Sequence[str], articles: Sequence[Article], threshold: float = COPY_SIMILARITY
) -> Failure | None:
    """The first sentence that nearly copies one of the articles' sentences (or titles)."""
    for index, sentence in enumerate(sentences, 1):
        failure = sentence_copy_failure(index, sentence, articles, threshold)
        if failure is not None:
            return failure
    return None


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(t.lower() for t in _TOKEN.findall(text))


def _copy_ratio(tokens: tuple[str, ...], theirs: tuple[str, ...], threshold: float) -> float:
    if not tokens or not theirs:
        return 0.0
    matcher = SequenceMatcher(None, tokens, theirs, autojunk=False)
    # the quick ratios are upper bounds of ratio(): most pairs are ruled out without the match
    if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
        return 0.0
    return matcher.ratio()


@lru_cache(maxsize=512)
def _source_sentences(title: str, text: str) -> tuple[tuple[str, ...], ...]:
    return tuple(_tokens(s) for s in (title, *split_sentences(text[:COPY_CHARS])))


COPY_CHARS = 20_000  # of each article's text compared for copies (the prompt sends less)


# --- grounding: is every claim of a generated item in the articles it cites? ---------------------

GROUNDED_SHARE = 0.6  # of a sentence's content words that must occur in its cited articles
MIN_CONTENT_WORDS = 3  # a sentence with fewer content words says nothing checkable
MIN_HEADLINE_WORDS = 2
# Function words that carry no claim; the share above counts the other words only.
_GROUNDING_STOPWORDS = frozenset(
    """a an the and or but nor so yet for of to in on at by with from into onto over under about
    above below after before during since until while as than then also too very just only
    even still more most less least much many some any all both each every few other such own
    same no not is are was were be been being am has have had having do does did doing will
    would shall should can could may might must this that these those there here where when
    what which who whom whose why how it its it's he him his she her hers they them their
    theirs we us our you your i me my said says say according told new now today yesterday
    tomorrow again out up down off per via amid among against between through across
    der die das und les des une del los las""".split()  # noqa: SIM905
)  # fmt: skip
_WORD_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_SUFFIXES = ("ing", "ed", "es", "s", "ly")
_QUOTED = re.compile(r"[\"“„«‹]([^\"“”„«»‹›]{2,300})[\"”“»›]|‘([^‘’]{2,300})’")
_CLAUSE_BREAK = re.compile(r"[,;:!?()\[\]\"“”„«»‹›‘’—–]|\.(?:\s|$)")
_PUNCT = re.compile(r"[^\w\s]|_", re.UNICODE)
TITLE_CASE_SHARE = 0.7  # a headline with this share of capitalised words is in title case

_REASONS = {
    "unsupported_number": "numbers not in the cited articles",
    "unsupported_name": "names not in the cited articles",
    "unsupported_quote": "quoted text not in the cited articles",
    "unsupported_words": "words mostly not from the cited articles",
    "too_few_words": "too few words to state a fact",
    "copied_sentence": "a sentence copied nearly word for word from an article",
    "unsupported_date": "a date not in the cited articles",
    "no_date": "no date",
    "no_citation": "no citation",
    "bad_citation": "a citation naming no article",
    "bad_shape": "the wrong shape",
}


def describe_drops(dropped: Mapping[str, int]) -> str:
    """ "1 with numbers not in the cited articles, 2 with ..." for notes and retries."""
    return ", ".join(f"{n} with {_REASONS.get(r, r)}" for r, n in sorted(dropped.items()))


def content_words(text: str) -> list[str]:
    """Lowercased words that carry content: 3+ letters or any number, function words removed."""
    tokens = (t.lower() for t in _WORD_TOKEN.findall(_THOUSANDS.sub("", text)))
    return [t for t in tokens if (len(t) >= 3 or t.isdigit()) and t not in _GROUNDING_STOPWORDS]


def _stem(word: str) -> str:
    """A crude stem, so "injures" meets "injured": common English suffixes off, 3+ letters kept."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def normalise(text: str) -> str:
    """Case, punctuation, whitespace and thousand separators removed: " 1200 people s bank "."""
    text = _PUNCT.sub(" ", _THOUSANDS.sub("", text).lower())
    return f" {' '.join(text.split())} "


@dataclass(frozen=True)
class _Source:
    normal: str  # normalise(title + text)
    stems: frozenset[str]  # stems of every word
    figures: frozenset[str]  # numbers()


@lru_cache(maxsize=512)
def _source(title: str, text: str) -> _Source:
    joined = f"{title}\n{text}"
    stems = frozenset(_stem(t.lower()) for t in _WORD_TOKEN.findall(_THOUSANDS.sub("", joined)))
    return _Source(normalise(joined), stems, frozenset(numbers(joined)))


def names(text: str) -> list[tuple[str, bool]]:
    """Capitalised multi-word names ("Central Bank", "Anna Berg"), each with whether it opens
    the text (its first word may then be capitalised only for that reason).

    A run of capitalised words ends at punctuation; leading function words ("The", "On") are
    not part of it; a single capitalised word is not counted.
    """
    found: list[tuple[str, bool]] = []
    position = 0
    for clause in _CLAUSE_BREAK.split(text):
        run: list[str] = []
        start = position
        for word in [*clause.split(), ""]:
            word = word.strip(".'’")
            if word[:1].isupper():
                if not run:
                    start = position
                run.append(word)
            else:
                while run and run[0].lower() in _GROUNDING_STOPWORDS:
                    run.pop(0)
                if len(run) >= 2:
                    found.append((" ".join(run), start == 0))
                run = []
            position += bool(word)
    return found


def _name_grounded(name: str, opens: bool, haystack: str) -> bool:
    """The name occurs in the sources; one opening the text may lose its first words."""
    words = name.split()
    tails = range(len(words) - 1) if opens else range(1)
    return any(normalise(" ".join(words[i:])) in haystack for i in tails)


def quotes(text: str) -> list[str]:
    """Text between quotation marks ("...", “...”, „...“, «...», ‘...’)."""
    return [a or b for a, b in _QUOTED.findall(text)]


def _title_case(text: str) -> bool:
    long_words = [w for w in _WORD_TOKEN.findall(text) if len(w) >= 4 and not w.isdigit()]
    upper = sum(w[:1].isupper() for w in long_words)
    return bool(long_words) and upper >= TITLE_CASE_SHARE * len(long_words)


def grounding_failure(
    text: str,
    cited: Sequence[Article],
    language: str = "",
    min_words: int = MIN_CONTENT_WORDS,
) -> Failure | None:
    """Why ``text`` (a generated sentence or headline) is not grounded in ``cited``, or None.

    Numbers always must occur in the cited articles. Names, quoted text and the share of
    content words are checked when a cited article is written in ``language`` (or unlabelled):
    a sentence translated from another language shares its numbers, not its words. Names are
    not checked in German (every noun is capitalised) nor in a title-case headline.
    """
    sources = [_source(a.title, a.text) for a in cited]
    figures = frozenset().union(*(s.figures for s in sources)) if sources else frozenset()
    missing = numbers(text) - figures
    if missing:
        return Failure("unsupported_number", f"{', '.join(sorted(missing))} not in the sources")
    want = language.lower().split("-")[0]
    if want and not any(a.language.lower().split("-")[0] in {"", want} for a in cited):
        return None
    haystack = "\n".join(s.normal for s in sources)
    for quoted in quotes(text):
        if normalise(quoted) not in haystack:
            return Failure("unsupported_quote", f"the quote {quoted!r} is not in the sources")
    if want != "de" and not _title_case(text):
        for name, opens in names(text):
            if not _name_grounded(name, opens, haystack):
                return Failure("unsupported_name", f"{name!r} is not in the sources")
    words = content_words(text)
    if len(words) < min_words:
        return Failure("too_few_words", f"{len(words)} content word(s); a fact needs more")
    stems = frozenset().union(*(s.stems for s in sources)) if sources else frozenset()
    known = sum(_stem(w) in stems for w in words)
    if known < GROUNDED_SHARE * len(words):
        return Failure(
            "unsupported_words",
            f"only {known} of {len(words)} content words are in the sources",
        )
    return None


def date_failure(when: str, cited: Sequence[Article]) -> Failure | None:
    """A timeline date must come from the cited articles: its numbers from their text or
    publication dates, or its words (a weekday, "last week") from their text."""
    if not when:
        return Failure("no_date", "a timeline entry needs a date")
    known: set[str] = set()
    for article in cited:
        known |= numbers(f"{article.title}\n{article.text}")
        day = article.published or article.fetched_at
        if day is not None:  # "2026-03-05" and "5 March 2026" both
            known |= numbers(f"{day:%Y-%m-%d} {day.day} {day.month}")
    figures = numbers(when)
    if figures:
        missing = figures - known
        if not missing:
            return None
        return Failure("unsupported_date", f"{when!r} is not a date of the cited articles")
    haystack = "\n".join(_source(a.title, a.text).normal for a in cited)
    if normalise(when) in haystack:
        return None
    return Failure("unsupported_date", f"{when!r} is not in the cited articles")
