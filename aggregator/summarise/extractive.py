"""The extractive summary: a deterministic headline and 2-4 lead sentences of the members, each
cited, spread over sources, near-duplicates skipped. The offline default and every fallback."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from aggregator.records import Article, Story, Summary, SummarySentence
from aggregator.summarise.checks import numbers
from aggregator.text import one_line, shorten, split_sentences

EXTRACTIVE_VERSION = "extractive-1"  # bump when the extractive algorithm changes its output
EXTRACTIVE_MODEL = "extractive"
HEADLINE_MAX = 200


# --- extractive -------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    {"the", "and", "for", "that", "with", "this", "from", "was", "were", "are", "has", "have",
     "had", "its", "his", "her", "their", "they", "said", "says", "will", "would", "been",
     "not", "but", "who", "which", "after", "over", "into", "about", "more", "than", "also",
     "der", "die", "das", "und", "les", "des", "une", "del", "los", "las"}
)  # fmt: skip
LEAD_SENTENCES = 8  # sentences per article considered: the news is at the top
LEAD_CHARS = 8000  # only this much of each text is split into sentences
MIN_WORDS, MAX_WORDS = 6, 70  # shorter is a fragment or byline, longer a run-on
NEAR_DUPLICATE = 0.7  # share of the smaller word set found in the other
SAME_FACT = 0.15  # ... enough when one sentence's figures all recur in the other
SOURCE_REPEAT_PENALTY = 0.6  # prefer a second source over a second sentence from the first


@dataclass(frozen=True)
class _Candidate:
    text: str
    article: int  # index in the members list
    source: str  # the article's source id: a summary should draw on several
    position: int  # sentence index within the article
    words: frozenset[str]
    score: float


def words(text: str) -> frozenset[str]:
    """Lowercased content words (3+ characters, or any number), stopwords removed."""
    tokens = (t.lower() for t in _WORD.findall(text))
    return frozenset(t for t in tokens if (len(t) >= 3 or t.isdigit()) and t not in _STOPWORDS)


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Share of the smaller set that the other contains (1.0: one repeats the other)."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def story_members(story: Story, articles: Sequence[Article]) -> list[Article]:
    """The story's articles in story order; all given articles if none match its ids."""
    by_id = {a.id: a for a in articles}
    members = [by_id[i] for i in story.article_ids if i in by_id]
    return members or list(articles)


def _in_language(members: list[Article], language: str) -> list[Article]:
    """The members written in ``language`` (or not labelled), if there are any; else all."""
    want = language.lower().split("-")[0]
    if not want:
        return members
    local = [a for a in members if a.language.lower().split("-")[0] in {"", want}]
    return local or members


def _document_frequency(members: Sequence[Article]) -> Counter[str]:
    """How many members use each word (title and text)."""
    return Counter(w for a in members for w in words(f"{a.title} {a.text}"))


def _representative(members: Sequence[Article], df: Counter[str]) -> int:
    """Index of the member whose title words the other members use most."""
    best, best_score = -1, -1.0
    for index, article in enumerate(members):
        if not article.title.strip():
            continue
        title = words(article.title)
        # df counts the article itself once; the rest are other members using the word.
        score = sum(df[w] - 1 for w in title) / len(title) if title else 0.0
        if score > best_score:  # strict: ties keep the earliest member
            best, best_score = index, score
    return best


def extractive_summary(story: Story, articles: Sequence[Article], language: str = "") -> Summary:
    """A deterministic summary built from the members' own sentences, each cited.

    With ``language`` (the site's), sentences come from members in that language when the story
    has any, so an English page does not quote a German lead.
    """
    members = _in_language(story_members(story, articles), language)
    df = _document_frequency(members)
    head = _representative(members, df)
    title = members[head].title if head >= 0 else story.title
    headline = shorten(one_line(title), HEADLINE_MAX)
    limit = 4 if len({a.source_id for a in members}) >= 4 else 3
    picked = _pick(_candidates(members, df, words(headline)), words(headline), limit)
    sentences = [SummarySentence(c.text, (members[c.article].id,)) for c in picked]
    if len(sentences) < 2:
        sentences += _title_sentences(members, head, [c.words for c in picked], 2 - len(sentences))
    if not sentences and members:
        anchor = max(head, 0)
        sentences = [SummarySentence(one_line(members[anchor].title), (members[anchor].id,))]
    if not headline and sentences:
        headline = shorten(sentences[0].text, HEADLINE_MAX)
    return Summary(
        story_id=story.id,
        headline=headline,
        sentences=tuple(s for s in sentences if s.text),
        method="extractive",
        model=EXTRACTIVE_MODEL,
    )


# A wire dateline opening a lead: "LONDON (Reuters) - ", "VELDEN, Estmark (AP) — ".
DATELINE = re.compile(
    r"^[A-ZÀ-ÞŒ][A-ZÀ-ÞŒ .'’-]{1,40}(?:,\s*[\w .'’-]{2,40})?\s*\([^()]{1,40}\)\s*[-–—]+\s*"
)


def _candidates(
    members: Sequence[Article], df: Counter[str], headline: frozenset[str]
) -> list[_Candidate]:
    """Scored sentences: early ones, and ones whose words other members also use, score high."""
    found: list[_Candidate] = []
    for index, article in enumerate(members):
        lead = split_sentences(article.text[:LEAD_CHARS])
        if len(article.text) > LEAD_CHARS:
            lead = lead[:-1]  # cut mid-sentence
        for position, sentence in enumerate(lead[:LEAD_SENTENCES]):
            if position == 0:
                sentence = DATELINE.sub("", sentence, count=1)
            bag = words(sentence)
            if not MIN_WORDS <= len(sentence.split()) <= MAX_WORDS or not bag:
                continue
            # Linear in the story size: df >= 2 means another member uses the word too.
            shared = sum(df[w] >= 2 for w in bag) / len(bag)
            on_topic = len(bag & headline) / len(bag)
            score = 1.0 / (1 + position) + shared + 0.5 * on_topic
            found.append(_Candidate(sentence, index, article.source_id, position, bag, score))
    return found


def _pick(
    candidates: Sequence[_Candidate], headline: frozenset[str], limit: int
) -> list[_Candidate]:
    """Greedy choice: best score, spread over sources, skipping near-duplicates."""
    chosen: list[_Candidate] = []
    used: Counter[str] = Counter()
    pool = list(candidates)
    while pool and len(chosen) < limit:
        best = max(
            pool,
            key=lambda c: (
                c.score - SOURCE_REPEAT_PENALTY * used[c.source],
                -c.article,
                -c.position,
            ),
        )
        pool.remove(best)
        if any(_redundant(best, c) for c in chosen):
            continue
        # A lead usually contains the headline's words and adds facts: skip it only when it
        # adds next to nothing (most of its own words are already in the headline).
        if len(best.words & headline) >= NEAR_DUPLICATE * len(best.words):
            continue
        chosen.append(best)
        used[best.source] += 1
    return chosen


def _redundant(a: _Candidate, b: _Candidate) -> bool:
    """Near-duplicates, or two wordings of one fact: shared figures and a shared core."""
    overlap = _overlap(a.words, b.words)
    if overlap >= NEAR_DUPLICATE:
        return True
    figures_a, figures_b = numbers(a.text), numbers(b.text)
    fewer = min(figures_a, figures_b, key=len)
    # every figure of one sentence repeated in the other: most likely the same fact reworded
    return bool(fewer) and fewer <= (figures_a & figures_b) and overlap >= SAME_FACT


def _title_sentences(
    members: Sequence[Article], head: int, seen: list[frozenset[str]], wanted: int
) -> list[SummarySentence]:
    """Other members' titles as cited sentences, for stories whose articles carry no text."""
    out: list[SummarySentence] = []
    seen = list(seen) + ([words(members[head].title)] if head >= 0 else [])
    for index, article in enumerate(members):
        title, bag = one_line(article.title), words(article.title)
        if index == head or not title or any(_overlap(bag, s) >= NEAR_DUPLICATE for s in seen):
            continue
        out.append(SummarySentence(title, (article.id,)))
        seen.append(bag)
        if len(out) >= wanted:
            break
    return out
