"""The clusterer's uncertain merges, and who decides them: the full texts, or an adjudicator.

Average linkage merges two groups when their titles and leads are alike enough on average.
``Reviewer`` sees every merge (linkage.reviewed_linkage) and vetoes

- any whose groups' full texts can be compared (one language, enough words) and differ: names,
  weekdays and an outlet's house words left out, they are not alike enough on average, or one
  member is not alike the other group (ClusterParams.event_min_content, event_min_member),
  unless several names are shared (event_min_other_names);
- an uncertain one (barely above the threshold, or tied mostly by one name: see
  content.Overlap.name_share) that the texts would keep, or cannot judge, when an adjudicator
  (an LLM, cluster.adjudicate) answers that the two are different events. The adjudicator is
  shown titles and leads, less than the full texts, so it may part what they would keep but
  never joins what they part; without an answer (none configured, its budget spent, the
  endpoint down) the offline decision stands.

Answers are remembered for the run, so the linkage's reruns ask nothing twice; given the same
answers, the same articles give the same stories.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from aggregator.cluster.content import EventText, Overlap, event_text
from aggregator.cluster.linkage import Merge
from aggregator.records import Article
from aggregator.settings import ClusterParams

NEAR_THRESHOLD = "near_threshold"
SHARED_NAME = "shared_name"


@dataclass(frozen=True)
class Question:
    """One uncertain merge: what an adjudicator is shown, and the offline answer."""

    left: tuple[Article, ...]  # the oldest members of one group (at most review_sample)
    right: tuple[Article, ...]  # the same of the other
    similarity: float  # the groups' average similarity (titles and leads)
    reasons: tuple[str, ...]  # NEAR_THRESHOLD and/or SHARED_NAME
    name: str  # the name their full texts share most ("" when none)
    content: float  # their full-text similarity, names left out
    offline: bool  # the answer without an adjudicator: True when one event


class Adjudicator(Protocol):
    """Decides uncertain merges; ``cluster.adjudicate.LLMAdjudicator`` asks an LLM."""

    def decide(self, questions: Sequence[Question]) -> list[bool | None]:
        """Per question, True (one event), False (two events) or None (no answer: the offline
        answer stands)."""
        ...


@dataclass(frozen=True)
class ReviewCounts:
    """What the review of one clustering did."""

    uncertain: int = 0  # distinct uncertain merges (each decided once)
    vetoed: int = 0  # of them, kept apart
    adjudicated: int = 0  # answered by the adjudicator (the others: offline)
    overruled: int = 0  # parted by the adjudicator where the texts would keep them
    vetoed_certain: int = 0  # merges not uncertain whose full texts differ: vetoed offline


class Reviewer:
    """The ``review`` of linkage.reviewed_linkage for one clustering of ``articles`` (rows in
    the clustering's order, ``vectors`` their features)."""

    def __init__(
        self,
        articles: Sequence[Article],
        vectors: sp.csr_matrix,
        threshold: float,
        params: ClusterParams,
        adjudicator: Adjudicator | None = None,
    ) -> None:
        self._articles = articles
        self._vectors = vectors
        self._threshold = threshold
        self._params = params
        self._adjudicator = adjudicator
        self._text: EventText | None = None  # built at the first merge
        # (left, right) -> the pairs of rows kept apart (none: merged)
        self._decided: dict[tuple[tuple[int, ...], tuple[int, ...]], list[tuple[int, int]]] = {}
        self._counts = Counter[str]()

    @property
    def counts(self) -> ReviewCounts:
        return ReviewCounts(**self._counts)

    def __call__(self, merges: Sequence[Merge]) -> list[list[tuple[int, int]]]:
        """Per merge, the pairs of rows to keep apart (none: the merge stands)."""
        new = list(
            {
                (m.left, m.right): m for m in merges if (m.left, m.right) not in self._decided
            }.values()
        )
        if new:
            self._review(new)
        return [self._decided[m.left, m.right] for m in merges]

    def _review(self, merges: Sequence[Merge]) -> None:
        params, sample = self._params, self._params.review_sample
        if self._text is None:
            self._text = event_text(self._articles)
        text = self._text
        overlaps = text.overlaps(
            [(m.left[:sample], m.right[:sample]) for m in merges], params.event_min_words
        )
        asked: list[tuple[Merge, Overlap, Question]] = []
        for merge, overlap in zip(merges, overlaps, strict=True):
            near = merge.similarity < self._threshold * (1 + params.review_margin)
            named = overlap.name_share >= params.review_name_share
            offline = (
                not overlap.comparable
                or overlap.other_names >= params.event_min_other_names
                or (
                    overlap.content >= params.event_min_content
                    and overlap.least >= params.event_min_member
                )
            )
            if not (near or named):  # certain by its titles: only clearly different texts part it
                self._decide(merge, overlap, offline)
                self._counts["vetoed_certain"] += not offline
                continue
            self._counts["uncertain"] += 1
            if overlap.comparable and not offline:  # the full texts differ: nothing to ask
                self._decide(merge, overlap, False)
                self._counts["vetoed"] += 1
                continue
            question = Question(
                left=tuple(self._articles[i] for i in merge.left[:sample]),
                right=tuple(self._articles[i] for i in merge.right[:sample]),
                similarity=merge.similarity,
                reasons=(NEAR_THRESHOLD,) * near + (SHARED_NAME,) * named,
                name=overlap.name,
                content=overlap.content,
                offline=offline,
            )
            asked.append((merge, overlap, question))
        # the least certain first: a budget that runs out leaves the clearest to the texts
        asked.sort(key=lambda item: (item[0].similarity, item[0].left, item[0].right))
        answers: list[bool | None] = [None] * len(asked)
        if self._adjudicator is not None and asked:
            answers = self._adjudicator.decide([q for _, _, q in asked])
        for (merge, overlap, question), answer in zip(asked, answers, strict=True):
            same = question.offline if answer is None else answer
            self._decide(merge, overlap, same)
            self._counts["vetoed"] += not same
            self._counts["adjudicated"] += answer is not None
            self._counts["overruled"] += answer is not None and answer != question.offline

    def _decide(self, merge: Merge, overlap: Overlap, same: bool) -> None:
        """Record the decision; for a veto, which pairs of rows to keep apart: those whose texts
        differ (a group that is itself mixed keeps its members of the other's event free to
        join it later), else those whose features do."""
        apart: list[tuple[int, int]] = []
        if not same and self._text is not None:
            left, right = overlap.compared
            if left and right:
                apart = self._text.unlike_pairs(left, right, self._params.event_min_content)
            else:
                apart = self._unlike_features(merge)
        self._decided[merge.left, merge.right] = apart

    def _unlike_features(self, merge: Merge) -> list[tuple[int, int]]:
        """The pairs of the groups' first members whose features are less alike than the
        merge's average; when none is, the least alike pair."""
        sample = self._params.review_sample
        left, right = merge.left[:sample], merge.right[:sample]
        sims = (self._vectors[list(left)] @ self._vectors[list(right)].T).toarray()
        below = np.argwhere(sims < merge.similarity)
        if not below.size:
            below = np.array([np.unravel_index(int(sims.argmin()), sims.shape)])
        return [(left[int(a)], right[int(b)]) for a, b in below]
