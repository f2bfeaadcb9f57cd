"""Full-text event words: what two groups of articles share besides a prominent name.

The linkage compares titles and leads. When titles say little ("Live updates", a dateline) two
different events in one country meet through the country's name, which weighs heavily in every
short text of both. The whole text says more: a rate cut is told with "inflation", "borrowers",
"quarter point", a budget deal with "coalition", "spending", "parliament". ``EventText`` holds,
per article, the TF-IDF of its title and full text over the window, with the words that are
names kept apart (see event_text), so a check can ask how much of what two groups share is one
name, and how alike they are without names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from aggregator.cluster.features import TOKEN, tfidf, word_counts
from aggregator.records import Article

_SENTENCES = re.compile(r"(?<=[.!?:;\"”»])\s+|\n+")
# Languages that write common nouns capitalised: their capitals say nothing about names.
_CAPITALISED_NOUNS = frozenset({"de", "lb"})
# The commonest function words of the other languages the sources write in (English ones are
# left out already, with scikit-learn's list): they would make any two French texts alike. And
# the days and months: written capitalised, but no event's name.
_OTHER_STOP_WORDS = """
    au aux avec ce ces dans de des du elle en est et il ils je la le les leur lui mais me même
    ne nous on ou par pas pour qu que qui sa se ses son sont sur ta te tes toi ton tu un une vos
    votre vous été être avait avoir cette comme plus été fait ont était aussi entre après
    der die das den dem des ein eine einer eines einem einen und oder aber nicht ist sind war
    wurde werden wird hat haben auf aus bei mit nach von vor zum zur für über unter sich auch
    noch nur wie als dass im am es er sie wir ihr ihre sein seine bis durch gegen um zu
    el la los las un una unos unas y o pero no es son fue del al lo le les por para con sin
    sobre entre desde hasta que se su sus más como este esta estos estas ese esa ha han era
    il lo gli di da in con su per tra fra che non è sono della dello delle degli nel nella
    os as um uma ao aos em na no nas nos pelo pela que não é são foi mais como seu sua
    het een en van de te dat die niet is zijn op met voor aan bij uit ook maar als naar
    monday tuesday wednesday thursday friday saturday sunday january february march april may
    june july august september october november december
"""
OTHER_STOP_WORDS = frozenset(_OTHER_STOP_WORDS.split())


@dataclass(frozen=True)
class Overlap:
    """What two groups of articles share in their full texts."""

    content: float  # average cosine between their members, names left out
    least: float  # the least alike member's cosine to the other group's mean, names left out
    name_share: float  # share of their full-text similarity owed to the one name weighing most
    name: str  # that name ("" when they share none)
    other_names: float  # share owed to the other names they share ("Varga" beside "Estmark")
    comparable: bool  # each group has members with enough text in a language the other has
    compared: tuple[tuple[int, ...], tuple[int, ...]]  # those members of each group (rows)


@dataclass(frozen=True)
class EventText:
    """Per article (rows in the clustering's order): full-text TF-IDF with names and without."""

    full: sp.csr_matrix  # article x term, names included, unit rows
    content: sp.csr_matrix  # article x term, names and house words left out, unit rows
    vocabulary: tuple[str, ...]  # the terms, in column order
    names: np.ndarray  # per term: True for a name
    words: np.ndarray  # per article: distinct content words (title and text)
    languages: tuple[str, ...]  # per article, primary subtag, "" when unknown

    def overlaps(
        self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], min_words: int
    ) -> list[Overlap]:
        """How alike the two groups of each pair are. The content words are compared between
        the members written in the language both groups have most members in and holding at
        least ``min_words`` content words (a headline alone, or another language, shares few
        words with a report of the same event); the name share over all members."""
        if not pairs:
            return []
        full_l = _means(self.full, [left for left, _ in pairs])
        full_r = _means(self.full, [right for _, right in pairs])
        products = sp.csr_matrix(full_l.multiply(full_r))
        totals = np.asarray(products.sum(axis=1)).ravel()
        named = sp.csr_matrix(products @ sp.diags(self.names.astype(np.float64)))
        top = np.asarray(named.argmax(axis=1)).ravel()
        top_value = np.asarray(named.max(axis=1).todense()).ravel()
        all_names = np.asarray(named.sum(axis=1)).ravel()
        chosen = [self._comparable(left, right, min_words) for left, right in pairs]
        content_l = _means(self.content, [c[0] for c in chosen])
        content_r = _means(self.content, [c[1] for c in chosen])
        content = np.asarray(content_l.multiply(content_r).sum(axis=1)).ravel()
        # each compared member against the other group's mean: the least alike of them
        least = [
            min(
                np.asarray(self.content[left] @ content_r[i].T.toarray()).min(),
                np.asarray(self.content[right] @ content_l[i].T.toarray()).min(),
            )
            if left and right
            else 0.0
            for i, (left, right) in enumerate(chosen)
        ]
        out: list[Overlap] = []
        for i, (left, right) in enumerate(chosen):
            shared = top_value[i] > 0 and totals[i] > 0
            out.append(
                Overlap(
                    content=float(content[i]),
                    least=float(least[i]),
                    name_share=float(top_value[i] / totals[i]) if shared else 0.0,
                    other_names=float((all_names[i] - top_value[i]) / totals[i]) if shared else 0.0,
                    name=self.vocabulary[int(top[i])] if shared else "",
                    comparable=bool(left) and bool(right),
                    compared=(tuple(left), tuple(right)),
                )
            )
        return out

    def unlike_pairs(
        self, left: Sequence[int], right: Sequence[int], floor: float
    ) -> list[tuple[int, int]]:
        """The pairs (one row of each group) whose texts, names left out, are less alike than
        ``floor``; when none is, the least alike pair."""
        sims = (self.content[list(left)] @ self.content[list(right)].T).toarray()
        below = np.argwhere(sims < floor)
        if not below.size:
            below = np.array([np.unravel_index(int(sims.argmin()), sims.shape)])
        return [(left[int(a)], right[int(b)]) for a, b in below]

    def _comparable(
        self, left: Sequence[int], right: Sequence[int], min_words: int
    ) -> tuple[list[int], list[int]]:
        """The members of each side to compare words between (both empty: not comparable)."""
        wordy_l = [i for i in left if self.words[i] >= min_words]
        wordy_r = [i for i in right if self.words[i] >= min_words]
        shared = {self.languages[i] for i in wordy_l} & {self.languages[i] for i in wordy_r}
        shared.discard("")  # unknown: perhaps two languages, whose words differ anyway
        if not shared:
            return [], []
        language = min(
            shared,
            key=lambda lang: (
                -sum(self.languages[i] == lang for i in (*wordy_l, *wordy_r)),
                lang,
            ),
        )
        return (
            [i for i in wordy_l if self.languages[i] == language],
            [i for i in wordy_r if self.languages[i] == language],
        )


def event_text(articles: Sequence[Article]) -> EventText:
    """Title and full text of each article as TF-IDF over the window's articles.

    A name is a word written capitalised somewhere in a text and in lower case nowhere in the
    window ("Estmark", "Varga"; not "Bank", which is also "bank"); titles count as lower-case
    evidence only, since many are written in Title Case. Texts in a language that
    capitalises its nouns (German) count as lower-case evidence only, so their nouns stay
    content words unless another language writes them as names.
    """
    texts = [f"{a.title}\n{a.text}" for a in articles]
    languages = tuple(a.language.split("-")[0].lower() for a in articles)
    capitalised: set[str] = set()
    lowered: set[str] = set()
    for article, language in zip(articles, languages, strict=True):
        lowered.update(w for w in TOKEN.findall(article.title) if w[0].islower())
        for sentence in _SENTENCES.split(article.text):  # not titles: Title Case Says Nothing
            tokens = TOKEN.findall(sentence)
            lowered.update(w for w in tokens if w[0].islower())
            if language not in _CAPITALISED_NOUNS:  # a sentence's first word says nothing
                capitalised.update(w.lower() for w in tokens[1:] if w[0].isupper())
    counts, vocabulary = word_counts(texts)
    keep = np.array([w not in OTHER_STOP_WORDS for w in vocabulary], dtype=bool)
    names = np.array([w in capitalised and w not in lowered for w in vocabulary], dtype=bool)
    counts = sp.csr_matrix(counts[:, np.flatnonzero(keep)])
    terms = [w for w, k in zip(vocabulary, keep, strict=True) if k]
    names = names[keep]
    if counts.shape[1] == 0:
        counts = sp.csr_matrix((len(texts), 1), dtype=np.float32)
        terms, names = [""], np.zeros(1, dtype=bool)
    full = tfidf(counts)
    house = house_words(counts, [a.source_id for a in articles])
    left_out = names | house
    names &= ~house  # an outlet's own name in its datelines names no event
    content_columns = sp.diags((~left_out).astype(np.float32))
    content = _unit_rows(sp.csr_matrix(full @ content_columns))
    words = np.asarray((counts[:, np.flatnonzero(~left_out)] > 0).sum(axis=1)).ravel()
    return EventText(
        full=sp.csr_matrix(full, dtype=np.float64),
        content=sp.csr_matrix(content, dtype=np.float64),
        vocabulary=tuple(terms),
        names=names,
        words=words,
        languages=languages,
    )


# A word of one source alone is a house word when in this many of its articles and at least
# this share of them: fewer is a story it told twice (an outlet alone in its language owns all
# that language's words: its two reports of one event must still meet).
HOUSE_MIN_ARTICLES = 3
HOUSE_SHARE = 0.5


def house_words(counts: sp.csr_matrix, sources: Sequence[str]) -> np.ndarray:
    """Per term: True for an outlet's house words, the boilerplate of its pages ("Our
    photographers sent these pictures", "Refresh for the newest posts"): used by one source
    alone, in at least HOUSE_MIN_ARTICLES of its articles and HOUSE_SHARE of them. Two
    galleries of one outlet share them whatever they show."""
    codes: dict[str, int] = {}
    rows = np.array([codes.setdefault(s, len(codes)) for s in sources], dtype=np.int64)
    n = len(sources)
    member = sp.csr_matrix((np.ones(n), (rows, np.arange(n))), shape=(len(codes), n))
    present = sp.csr_matrix(counts, copy=True)
    present.data[:] = 1.0
    per_source = sp.csr_matrix(member @ present).toarray()  # source x term: articles using it
    sizes = np.bincount(rows, minlength=len(codes))
    users = (per_source > 0).sum(axis=0)
    owner = per_source.argmax(axis=0)
    uses = per_source[owner, np.arange(per_source.shape[1])]
    house: np.ndarray = np.asarray(
        (users == 1) & (uses >= HOUSE_MIN_ARTICLES) & (uses >= HOUSE_SHARE * sizes[owner]),
        dtype=bool,
    )
    return house


def _means(matrix: sp.csr_matrix, groups: Sequence[Sequence[int]]) -> sp.csr_matrix:
    """Per group, the mean of its rows (a zero row for an empty group)."""
    rows = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    cols = np.fromiter((i for g in groups for i in g), dtype=np.int64, count=rows.size)
    weights = np.repeat([1 / max(len(g), 1) for g in groups], [len(g) for g in groups])
    select = sp.csr_matrix((weights, (rows, cols)), shape=(len(groups), matrix.shape[0]))
    return sp.csr_matrix(select @ matrix)


def _unit_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to unit length, all-zero rows left zero."""
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1 / np.maximum(norms, 1e-12)) @ matrix)
