"""Clustering quality: B-cubed precision/recall/F1 (the headline numbers), ARI and NMI.

Each takes two label sequences of equal length, predicted and gold, one label per item;
``score_stories`` gives all of them for stories found against gold stories.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from aggregator.records import Story


def bcubed(pred: Sequence[Hashable], gold: Sequence[Hashable]) -> tuple[float, float, float]:
    """(precision, recall, F1), averaged over items (Bagga & Baldwin 1998).

    An item's precision is the share of its predicted cluster that shares its gold cluster;
    its recall, the share of its gold cluster that shares its predicted cluster.
    """
    _check(pred, gold)
    if not pred:
        return 1.0, 1.0, 1.0
    both = Counter(zip(pred, gold, strict=True))
    pred_sizes = Counter(pred)
    gold_sizes = Counter(gold)
    # n items sharing (p, g) each score n / |p| and n / |g|: sum n * n / size over the pairs.
    precision = sum(n * n / pred_sizes[p] for (p, _), n in both.items()) / len(pred)
    recall = sum(n * n / gold_sizes[g] for (_, g), n in both.items()) / len(pred)
    return precision, recall, 2 * precision * recall / (precision + recall)


def adjusted_rand_index(pred: Sequence[Hashable], gold: Sequence[Hashable]) -> float:
    """Pair-counting agreement corrected for chance: 1 identical, about 0 random."""
    _check(pred, gold)
    return float(adjusted_rand_score(_codes(gold), _codes(pred)))


def normalized_mutual_information(pred: Sequence[Hashable], gold: Sequence[Hashable]) -> float:
    """Mutual information normalised to [0, 1] (arithmetic mean of the entropies)."""
    _check(pred, gold)
    return float(normalized_mutual_info_score(_codes(gold), _codes(pred)))


@dataclass(frozen=True)
class StoryScore:
    """Stories found against gold stories: the figures, and the story each article went to."""

    precision: float  # B-cubed
    recall: float
    f1: float
    ari: float
    nmi: float
    ids: list[str]  # every article id of the gold, sorted
    found: dict[str, str]  # article id -> id of the story found for it
    gold_stories: int  # distinct gold stories


def score_stories(stories: Iterable[Story], gold: Mapping[str, str]) -> StoryScore:
    """B-cubed P/R/F1, ARI and NMI of ``stories`` against ``gold`` (article id -> gold story),
    over the articles of the gold; each of them must be in a story (KeyError otherwise)."""
    found = {a: s.id for s in stories for a in s.article_ids}
    ids = sorted(gold)
    pred, truth = [found[i] for i in ids], [gold[i] for i in ids]
    precision, recall, f1 = bcubed(pred, truth)
    return StoryScore(
        precision=precision,
        recall=recall,
        f1=f1,
        ari=adjusted_rand_index(pred, truth),
        nmi=normalized_mutual_information(pred, truth),
        ids=ids,
        found=found,
        gold_stories=len(set(truth)),
    )


def _codes(labels: Sequence[Hashable]) -> list[int]:
    """Labels as small integers (sklearn wants comparable labels; ours may be mixed types)."""
    seen: dict[Hashable, int] = {}
    return [seen.setdefault(label, len(seen)) for label in labels]


def _check(pred: Sequence[Hashable], gold: Sequence[Hashable]) -> None:
    if len(pred) != len(gold):
        raise ValueError(
            f"label sequences differ in length: {len(pred)} predicted, {len(gold)} gold"
        )
