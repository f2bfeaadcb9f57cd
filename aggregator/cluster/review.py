"""The clusterer's uncertain merges, and who decides them: the full texts, or an adjudicator.

Average linkage merges two groups when their titles and leads are alike enough on average. Two
kinds of merge are uncertain: those barely above the threshold, and those where what the two
groups share is mostly one name (see content.Overlap.name_share). ``Reviewer`` sees every merge
(linkage.reviewed_linkage) and vetoes an uncertain one when

- an adjudicator (an LLM, cluster.adjudicate) answers that the two are different events, or
- it has no answer (none configured, its budget spent, the endpoint down) and the groups' full
  texts, names left out, are not alike enough (ClusterParams.event_min_content).

Answers are remembered for the run, so the linkage's reruns ask nothing twice; given the same
answers, the same articles give the same stories.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aggregator.cluster.content import EventText, event_text
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
    overruled: int = 0  # adjudicated against the offline answer


class Reviewer:
    """The ``review`` of linkage.reviewed_linkage for one clustering of ``articles`` (rows in
    the clustering's order)."""

    def __init__(
        self,
        articles: Sequence[Article],
        threshold: float,
        params: ClusterParams,
        adjudicator: Adjudicator | None = None,
    ) -> None:
        self._articles = articles
        self._threshold = threshold
        self._params = params
        self._adjudicator = adjudicator
        self._text: EventText | None = None  # built at the first merge
        self._decided: dict[tuple[tuple[int, ...], tuple[int, ...]], bool] = {}
        self._counts = {"uncertain": 0, "vetoed": 0, "adjudicated": 0, "overruled": 0}

    @property
    def counts(self) -> ReviewCounts:
        return ReviewCounts(**self._counts)

    def __call__(self, merges: Sequence[Merge]) -> list[bool]:
        """Per merge, True to keep it."""
        params = self._params
        new = list(
            {
                (m.left, m.right): m for m in merges if (m.left, m.right) not in self._decided
            }.values()
        )
        if new:
            if self._text is None:
                self._text = event_text(self._articles)
            sample = params.review_sample
            overlaps = self._text.overlaps(
                [(m.left[:sample], m.right[:sample]) for m in new], params.event_min_words
            )
            asked: list[tuple[Merge, Question]] = []
            for merge, overlap in zip(new, overlaps, strict=True):
                reasons = tuple(
                    reason
                    for reason, applies in (
                        (
                            NEAR_THRESHOLD,
                            merge.similarity < self._threshold * (1 + params.review_margin),
                        ),
                        (SHARED_NAME, overlap.name_share >= params.review_name_share),
                    )
                    if applies
                )
                if not reasons:
                    self._decided[merge.left, merge.right] = True
                    continue
                offline = not overlap.comparable or overlap.content >= params.event_min_content
                question = Question(
                    left=tuple(self._articles[i] for i in merge.left[:sample]),
                    right=tuple(self._articles[i] for i in merge.right[:sample]),
                    similarity=merge.similarity,
                    reasons=reasons,
                    name=overlap.name,
                    content=overlap.content,
                    offline=offline,
                )
                asked.append((merge, question))
            questions = [q for _, q in asked]
            answers: list[bool | None] = [None] * len(questions)
            if self._adjudicator is not None and questions:
                answers = self._adjudicator.decide(questions)
            for (merge, question), answer in zip(asked, answers, strict=True):
                same = question.offline if answer is None else answer
                self._decided[merge.left, merge.right] = same
                self._counts["uncertain"] += 1
                self._counts["vetoed"] += not same
                self._counts["adjudicated"] += answer is not None
                self._counts["overruled"] += answer is not None and answer != question.offline
        return [self._decided[m.left, m.right] for m in merges]
