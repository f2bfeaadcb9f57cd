"""The "24h hot" score of a story, with its parts kept so a page can say why it ranks there.

score = (sources x weighted distinct sources + articles x log(1 + articles)
         + velocity x log(1 + recent articles per hour)) x recency

Distinct sources dominate: ten articles from one outlet are one voice, five outlets are five,
and a wire story copied by five outlets is one voice too (see dedupe.py).
Recency halves every ``half_life_hours`` of the story's median article age, so one late article
does not make an old story new again, and one early outlier does not bury a fresh one.

Category balance: the k-th story of a category (counting from 0, in rank order) has its score
multiplied by ``category_decay ** k``, so one busy desk does not fill the whole page. Pure.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime

from aggregator.cluster.dedupe import duplicate_groups
from aggregator.records import Article, Score, Story
from aggregator.settings import RankSettings
from aggregator.times import ago, as_utc, hours_between

DEFAULT_WEIGHTS = RankSettings()  # frozen, so one shared default is safe


def rank_stories(
    stories: Sequence[Story],
    articles: Mapping[str, Article],
    now: datetime,
    weights: RankSettings = DEFAULT_WEIGHTS,
) -> list[Story]:
    """New Story records with their Score (``score_parts``), hottest first (ties: by id)."""
    now = as_utc(now)
    scored = [_scored(story, articles, now, weights) for story in stories]
    ranked = sorted(scored, key=lambda s: (-s.score, s.id))
    if weights.category_decay >= 1.0:
        return ranked
    return balance_categories(ranked, weights.category_decay)


def balance_categories(ranked: Sequence[Story], decay: float) -> list[Story]:
    """Re-rank so each further story of one category counts ``decay`` times less.

    Greedy over per-category queues (already in rank order): at each step take the category
    whose next story has the best balanced score. O(stories x categories).
    """
    queues: dict[str, list[Story]] = {}
    for story in ranked:
        queues.setdefault(story.category, []).append(story)
    heads = dict.fromkeys(queues, 0)
    taken: dict[str, int] = dict.fromkeys(queues, 0)
    out: list[Story] = []
    while len(out) < len(ranked):
        best_category, best_key = "", (math.inf, "")
        for category, queue in queues.items():
            if heads[category] < len(queue):
                story = queue[heads[category]]
                key = (-story.score * decay ** taken[category], story.id)
                if key < best_key:
                    best_category, best_key = category, key
        story = queues[best_category][heads[best_category]]
        factor = decay ** taken[best_category]
        parts = dataclasses.replace(
            story.score_parts or Score(), balance=factor, score=story.score * factor
        )
        out.append(dataclasses.replace(story, score_parts=parts))
        heads[best_category] += 1
        taken[best_category] += 1
    return out


def score_parts(
    story: Story, articles: Mapping[str, Article], now: datetime, weights: RankSettings
) -> Score:
    """The story's score and the parts it is made of."""
    everything = [articles[i] for i in dict.fromkeys(story.article_ids) if i in articles]
    # a syndicated copy or a second URL of one article is one entry and one voice
    members = [group[0] for group in duplicate_groups(everything)]
    times = [as_utc(a.timestamp) for a in members]
    first = min([*times, *([as_utc(story.first_seen)] if story.first_seen else [])], default=now)
    last = max(times, default=as_utc(story.updated) if story.updated else first)
    outlets: dict[str, float] = {}
    for article in members:  # one voice per source, at its highest weight
        outlets[article.source_id] = max(outlets.get(article.source_id, 0.0), article.weight)
    ages = [hours_between(t, now) for t in times]
    median_age = statistics.median(ages) if ages else hours_between(first, now)
    recent = sum(1 for age in ages if age <= weights.velocity_hours)
    velocity = recent / weights.velocity_hours if weights.velocity_hours > 0 else 0.0
    languages = {a.language.lower().split("-")[0] for a in members if a.language}
    recency = 0.5 ** (median_age / weights.half_life_hours)
    source_points = weights.sources * float(sum(outlets.values()))
    article_points = weights.articles * math.log1p(len(members))
    velocity_points = weights.velocity * math.log1p(velocity)
    mass = source_points + article_points + velocity_points
    return Score(
        score=mass * recency if members else 0.0,
        sources=float(len(outlets)),
        languages=float(len(languages)),
        weighted_sources=float(sum(outlets.values())),
        articles=float(len(members)),
        copies=float(len(everything) - len(members)),
        age_hours=hours_between(first, now),
        last_hours=hours_between(last, now),
        median_age_hours=median_age,
        recency=recency,
        velocity=velocity,
        source_points=source_points,
        article_points=article_points,
        velocity_points=velocity_points,
    )


def explain(story: Story) -> str:
    """Why the story ranks where it does: "5 sources in 2 languages, first seen 3 h ago"."""
    parts = story.score_parts
    if parts is None:  # not ranked
        return _plural(len(story.article_ids), "article")
    articles, sources = int(parts.articles), int(parts.sources)
    line = _plural(sources, "source")
    if parts.languages > 1:
        line += f" in {int(parts.languages)} languages"
    if articles > sources:
        line += f" ({_plural(articles, 'article')})"
    return f"{line}, first seen {ago(parts.age_hours)}"


def _scored(
    story: Story, articles: Mapping[str, Article], now: datetime, weights: RankSettings
) -> Story:
    return dataclasses.replace(story, score_parts=score_parts(story, articles, now, weights))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
