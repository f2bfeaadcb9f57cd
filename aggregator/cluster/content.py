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

from aggregator.cluster.features import _TOKEN, _tfidf, _word_counts
from aggregator.records import Article

_SENTENCES = re.compile(r"(?<=[.!?:;\"”»])\s+|\n+")
# Languages that write common nouns capitalised: their capitals say nothing about names.
_CAPITALISED_NOUNS = frozenset({"de", "lb"})
# The commonest function words of the other languages the sources write in (English ones are
# left out already, with scikit-learn's list): they would make any two French texts alike.
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
"""
OTHER_STOP_WORDS = frozenset(_OTHER_STOP_WORDS.split())


@dataclass(frozen=True)
class Overlap:
    """What two groups of articles share in their full texts."""

    content: float  # average cosine between their members, names left out
    name_share: float  # share of their full-text similarity owed to the one name weighing most
    name: str  # that name ("" when they share none)
    comparable: bool  # each group has members with enough text in a language the other has


@dataclass(frozen=True)
class EventText:
    """Per article (rows in the clustering's order): full-text TF-IDF with names and without."""

    full: sp.csr_matrix  # article x term, names included, unit rows
    content: sp.csr_matrix  # article x term, names left out, unit rows
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
        chosen = [self._comparable(left, right, min_words) for left, right in pairs]
        content_l = _means(self.content, [c[0] for c in chosen])
        content_r = _means(self.content, [c[1] for c in chosen])
        content = np.asarray(content_l.multiply(content_r).sum(axis=1)).ravel()
        out: list[Overlap] = []
        for i, (left, right) in enumerate(chosen):
            shared = top_value[i] > 0 and totals[i] > 0
            out.append(
                Overlap(
                    content=float(content[i]),
                    name_share=float(top_value[i] / totals[i]) if shared else 0.0,
                    name=self.vocabulary[int(top[i])] if shared else "",
                    comparable=bool(left) and bool(right),
                )
            )
        return out

    def _comparable(
        self, left: Sequence[int], right: Sequence[int], min_words: int
    ) -> tuple[list[int], list[int]]:
        """The members of each side to compare words between (both empty: not comparable)."""
        wordy_l = [i for i in left if self.words[i] >= min_words]
        wordy_r = [i for i in right if self.words[i] >= min_words]
        shared = {self.languages[i] for i in wordy_l} & {self.languages[i] for i in wordy_r}
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
        lowered.update(w for w in _TOKEN.findall(article.title) if w[0].islower())
        for sentence in _SENTENCES.split(article.text):  # not titles: Title Case Says Nothing
            tokens = _TOKEN.findall(sentence)
            lowered.update(w for w in tokens if w[0].islower())
            if language not in _CAPITALISED_NOUNS:  # a sentence's first word says nothing
                capitalised.update(w.lower() for w in tokens[1:] if w[0].isupper())
    counts, vocabulary = _word_counts(texts)
    keep = np.array([w not in OTHER_STOP_WORDS for w in vocabulary], dtype=bool)
    names = np.array([w in capitalised and w not in lowered for w in vocabulary], dtype=bool)
    counts = sp.csr_matrix(counts[:, np.flatnonzero(keep)])
    terms = [w for w, k in zip(vocabulary, keep, strict=True) if k]
    names = names[keep]
    if counts.shape[1] == 0:
        counts = sp.csr_matrix((len(texts), 1), dtype=np.float32)
        terms, names = [""], np.zeros(1, dtype=bool)
    full = _tfidf(counts)
    not_names = sp.diags((~names).astype(np.float32))
    content = _unit_rows(sp.csr_matrix(full @ not_names))
    words = np.asarray((counts[:, np.flatnonzero(~names)] > 0).sum(axis=1)).ravel()
    return EventText(
        full=sp.csr_matrix(full, dtype=np.float64),
        content=sp.csr_matrix(content, dtype=np.float64),
        vocabulary=tuple(terms),
        names=names,
        words=words,
        languages=languages,
    )


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
