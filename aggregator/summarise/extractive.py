"""The extractive summary: a deterministic headline and 2-4 lead sentences of the members, each
cited, spread over sources, near-duplicates skipped, led by the earliest factual report (opinion
pieces only when nothing else has text); a timeline from the members' own titles and times and
each source's headline as its perspective. The offline default and every fallback."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from aggregator.records import Article, Story, Summary, SummaryItem, SummaryItems, SummarySentence
from aggregator.summarise.checks import numbers
from aggregator.text import one_line, shorten, split_sentences

EXTRACTIVE_VERSION = "extractive-2"  # bump when the extractive algorithm changes its output
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
    """The story's articles in story order; never an article of another story (none: [])."""
    by_id = {a.id: a for a in articles}
    return [by_id[i] for i in dict.fromkeys(story.article_ids) if i in by_id]


# Opinion, comment and analysis: by the URL's path ("/opinion/", "/commentisfree/") or a title
# that says so ("Opinion: ...", "Analysis | ..."). A digest leads with what happened.
_OPINION_SEGMENTS = frozenset(
    """opinion opinions comment comments commentisfree editorial editorials column columns
    columnists analysis op-ed oped viewpoint viewpoints meinung kommentar kommentare leitartikel
    opinion-y-debate opinión tribune tribunes editorialistes""".split()  # noqa: SIM905
)
_OPINION_TITLE = re.compile(
    r"^\s*(?:opinion|analysis|comment|commentary|editorial|column|op-ed|view|viewpoint|"
    r"meinung|kommentar|analyse|opinión|análisis|tribune|éditorial|chronique)\s*[:|–—-]\s",
    re.IGNORECASE,
)


def is_opinion(article: Article) -> bool:
    """An opinion, comment or analysis piece, by its URL path or its title's prefix."""
    segments = urlsplit(article.url).path.lower().split("/")
    return bool(_OPINION_SEGMENTS.intersection(segments)) or bool(
        _OPINION_TITLE.match(article.title)
    )


def _factual(members: list[Article]) -> list[Article]:
    """The members that are not opinion pieces, if there are any; else all."""
    reports = [a for a in members if not is_opinion(a)]
    return reports or members


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
    everyone = story_members(story, articles)
    members = _factual(_in_language(everyone, language))
    df = _document_frequency(members)
    head = _representative(members, df)
    title = members[head].title if head >= 0 else story.title
    headline = shorten(one_line(title), HEADLINE_MAX)
    limit = 4 if len({a.source_id for a in members}) >= 4 else 3
    candidates = _candidates(members, df, words(headline))
    picked = _pick(candidates, words(headline), limit, _earliest_lead(members, candidates))
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
        items=SummaryItems(timeline=timeline(everyone), perspectives=perspectives(everyone)),
    )


def _time(article: Article) -> datetime | None:
    return article.published or article.fetched_at


def _earliest_lead(members: Sequence[Article], candidates: Sequence[_Candidate]) -> int | None:
    """Index of the earliest member (by its time, then story order) that has a candidate."""
    having = {c.article for c in candidates}
    timed = [(t, i) for i in having if (t := _time(members[i])) is not None]
    if timed:
        return min(timed)[1]
    return min(having) if having else None


TIMELINE_MAX = 8  # entries of an extractive timeline


def timeline(members: Sequence[Article]) -> tuple[SummaryItem, ...]:
    """The members' own titles at their times, earliest first; a title that nearly repeats an
    earlier one (a copy, a rewrite of the same headline) adds its article to that entry."""
    entries: list[tuple[datetime, str, frozenset[str], list[str]]] = []
    dated = sorted(
        ((t, index, a) for index, a in enumerate(members) if (t := _time(a)) is not None),
        key=lambda entry: (entry[0], entry[1]),
    )
    for when, _, article in dated:
        title, bag = one_line(article.title), words(article.title)
        if not title:
            continue
        same = next((e for e in entries if _overlap(bag, e[2]) >= NEAR_DUPLICATE), None)
        if same is not None:
            same[3].append(article.id)
            continue
        entries.append((when, title, bag, [article.id]))
    return tuple(
        SummaryItem(title, tuple(ids), when=f"{when:%Y-%m-%d %H:%M} UTC")
        for when, title, _, ids in entries[:TIMELINE_MAX]
    )


def perspectives(members: Sequence[Article]) -> tuple[SummaryItem, ...]:
    """One per source, in story order: the source's name and its earliest article's title."""
    out: dict[str, SummaryItem] = {}
    for article in members:
        title = one_line(article.title)
        if article.source_id in out or not title:
            continue
        who = one_line(article.source_name) or article.source_id
        out[article.source_id] = SummaryItem(title, (article.id,), who=who)
    return tuple(out.values()) if len(out) >= 2 else ()


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
    candidates: Sequence[_Candidate],
    headline: frozenset[str],
    limit: int,
    lead: int | None = None,
) -> list[_Candidate]:
    """Greedy choice: best score, spread over sources, skipping near-duplicates; the first
    sentence from member ``lead`` (the earliest report) when it has a usable one."""
    chosen: list[_Candidate] = []
    used: Counter[str] = Counter()
    pool = list(candidates)
    while pool and len(chosen) < limit:
        eligible = pool
        if not chosen and lead is not None:
            eligible = [c for c in pool if c.article == lead] or pool
        best = max(
            eligible,
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
