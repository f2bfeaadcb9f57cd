"""The UCI News Aggregator headlines (6,366 of them, 87 gold stories) as Articles.

The file is ../shared/data/clustering/uci_news_aggregator_first6k/articles.tsv; the quality
tests (tests/test_uci_clustering.py) and the clustering benchmark (benchmarks/bench_cluster.py)
both read it with ``load_uci`` and score what they find with
tests.support.metrics.score_stories.
"""

from __future__ import annotations

import csv
import random
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from aggregator.records import Article
from aggregator.urls import article_id


def load_uci(path: Path) -> tuple[list[Article], dict[str, str]]:
    """UCI rows as Articles (id from the URL) and the gold story of each."""
    articles: list[Article] = []
    gold: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            article = Article(
                id=article_id(row["url"]),
                url=row["url"],
                title=row["title"],
                source_id=row["hostname"],
                source_name=row["publisher"],
                published=datetime.fromisoformat(row["published_utc"]),
                category=row["category"],
            )
            articles.append(article)
            gold[article.id] = row["story_id"]
    return articles, gold


def spread(articles: list[Article], hours: float) -> list[Article]:
    """Each article moved later by a seeded random 0 to ``hours`` hours."""
    rng = random.Random(7)
    return [replace(a, published=a.timestamp + timedelta(hours=rng.uniform(0, hours)))
            for a in articles]  # fmt: skip
