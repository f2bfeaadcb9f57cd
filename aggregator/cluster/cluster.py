"""Articles -> stories: the one entry point, ``cluster_articles``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from aggregator.cluster.embed import Embedder
from aggregator.cluster.features import article_vectors, embedding_text
from aggregator.cluster.identity import assign_story_ids
from aggregator.cluster.linkage import group_rows
from aggregator.cluster.review import Adjudicator, ReviewCounts, Reviewer
from aggregator.records import Article, Story
from aggregator.settings import ClusterParams, TimeDiscount

GENERAL_CATEGORY = "general"  # the default category of a source (see sources.Source)


@dataclass(frozen=True)
class ClusterResult:
    """Stories of one clustering run and the previous stories folded into others."""

    stories: tuple[Story, ...]  # ordered by their oldest article
    merged: dict[str, str]  # previous story id -> id of the story that absorbed it
    review: ReviewCounts = field(
        default_factory=ReviewCounts
    )  # the uncertain merges and how they were decided


def cluster_articles(
    articles: Sequence[Article],
    previous: Mapping[str, str] | None = None,
    *,
    threshold: float | None = None,
    embedder: Embedder | None = None,
    time: TimeDiscount | None = TimeDiscount(),
    params: ClusterParams = ClusterParams(),
    adjudicator: Adjudicator | None = None,
) -> ClusterResult:
    """Group articles into stories; ``previous`` maps article id -> story id from earlier runs.

    ``threshold`` defaults to ``params.tfidf_threshold`` (TF-IDF alone) or
    ``params.embed_threshold`` (with an ``embedder``, see aggregator.cluster.embed: articles in
    different languages can then meet). ``time`` discounts the similarity of articles far apart
    in time (None: content alone). ``params`` holds the tuning of every step. Uncertain merges
    are checked on the articles' full texts, or decided by ``adjudicator`` (see cluster.review).
    """
    ordered = _canonical_order(articles)
    if not ordered:
        return ClusterResult((), {})
    vectors = article_vectors(ordered, params)
    dense = None
    if embedder is not None:
        dense = embedder.embed([embedding_text(a, params) for a in ordered]).astype(np.float32)
    if threshold is None:
        threshold = params.tfidf_threshold if dense is None else params.embed_threshold
    hours = np.array([a.timestamp.timestamp() / 3600 for a in ordered])
    codes = _previous_codes(ordered, previous or {})
    timing = None if time is None else (hours, time)
    reviewer = Reviewer(ordered, vectors, threshold, params, adjudicator)
    groups = group_rows(vectors, threshold, params, dense, codes, timing, reviewer)
    ids, merged = assign_story_ids(
        [[ordered[i].id for i in group] for group in groups], previous or {}
    )
    stories = tuple(
        _story(story_id, [ordered[i] for i in group], central)
        for story_id, group, central in zip(
            ids, groups, _most_central(vectors, groups), strict=True
        )
    )
    return ClusterResult(stories, merged, reviewer.counts)


# -- features --------------------------------------------------------------------------------


def _canonical_order(articles: Iterable[Article]) -> list[Article]:
    """Oldest first, then by id, one record per id: the same set gives the same run."""
    unique: dict[str, Article] = {}
    for article in sorted(articles, key=_age_key):
        unique.setdefault(article.id, article)
    return list(unique.values())


def _age_key(article: Article) -> tuple[float, str]:
    return (article.timestamp.timestamp(), article.id)


# -- average linkage -------------------------------------------------------------------------


def _previous_codes(articles: Sequence[Article], previous: Mapping[str, str]) -> np.ndarray:
    """Per article, a number standing for its previous story (-1: none)."""
    codes: dict[str, int] = {}
    return np.array(
        [
            codes.setdefault(previous[a.id], len(codes)) if a.id in previous else -1
            for a in articles
        ],
        dtype=np.int64,
    )


def _story(story_id: str, members: Sequence[Article], central: int) -> Story:
    """A Story record for members given oldest first, titled by member ``central``."""
    times = [a.timestamp for a in members]
    categories = Counter(a.category for a in members if a.category)
    if len(categories) > 1:  # a general outlet's "general" says less than a desk's "business"
        categories.pop(GENERAL_CATEGORY, None)
    category = min(categories, key=lambda c: (-categories[c], c)) if categories else ""
    return Story(
        id=story_id,
        article_ids=tuple(a.id for a in members),
        title=members[central].title,
        first_seen=min(times),
        updated=max(times),
        category=category,
    )


def _most_central(vectors: sp.csr_matrix, groups: Sequence[Sequence[int]]) -> list[int]:
    """Per group, the position of the member closest to the group's centroid (the oldest on
    ties): the largest sum of cosines to the other members.

    That sum is the member's dot product with the group's sum vector less its own square (1 up
    to float32 rounding), computed in float64 and rounded, so the two members of a pair tie
    exactly and the oldest wins. Groups are laid one after the other and scored in runs of a
    few hundred rows against the sums of the groups in the run: the work grows with the
    members, not with the square of a group's size.
    """
    sizes = np.array([len(group) for group in groups], dtype=np.int64)
    central = np.zeros(len(groups), dtype=np.int64)
    shared = np.flatnonzero(sizes > 1)
    if shared.size == 0:
        return central.tolist()
    members = np.concatenate([np.asarray(groups[g], dtype=np.int64) for g in shared.tolist()])
    label = np.repeat(np.arange(shared.size), sizes[shared])
    ends = np.cumsum(sizes[shared])
    rows = sp.csr_matrix(vectors[members], dtype=np.float64)
    ones = np.ones(members.size)
    sums = sp.csr_matrix(
        (ones, (label, np.arange(members.size))), shape=(shared.size, members.size)
    )
    sums = sp.csr_matrix(sums @ rows)
    scores = -np.asarray(rows.multiply(rows).sum(axis=1)).ravel()  # less the member's own 1
    start = 0
    while start < members.size:  # a run ends with the last group that fits, or its first group
        fits = np.searchsorted(ends, start + 256, side="right") - 1
        last = max(fits, np.searchsorted(ends, start, side="right"))
        stop, first_group = int(ends[last]), int(label[start])
        product = (rows[start:stop] @ sums[first_group : last + 1].T).toarray()
        scores[start:stop] += product[np.arange(stop - start), label[start:stop] - first_group]
        start = stop
    rounded = np.round(scores, 9)
    first = ends - sizes[shared]
    top = np.maximum.reduceat(rounded, first)
    at_top = np.flatnonzero(rounded == top[label])
    earliest = at_top[np.searchsorted(label[at_top], np.arange(shared.size))]
    central[shared] = earliest - first
    return central.tolist()
