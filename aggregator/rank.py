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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aggregator.cluster.dedupe import duplicate_groups
from aggregator.records import Article, Story


@dataclass(frozen=True)
class RankWeights:
    """How much each part counts; the defaults suit a 24-hour window."""

    half_life_hours: float = 6.0  # recency halves every this many hours of median age
    sources: float = 1.0  # per distinct source, times that source's weight
    articles: float = 0.5  # times log(1 + member articles)
    velocity: float = 0.5  # times log(1 + articles per hour in the recent span)
    velocity_hours: float = 3.0  # the recent span velocity counts over
    category_decay: float = 1.0  # factor per earlier story of the same category (1: off)


def rank_stories(
    stories: Sequence[Story],
    articles: Mapping[str, Article],
    now: datetime,
    weights: RankWeights = RankWeights(),  # frozen, so one shared default is safe
) -> list[Story]:
    """New Story records with score and score_parts, hottest first (ties: by id)."""
    now = _utc(now)
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
        parts = {**story.score_parts, "balance": factor, "score": story.score * factor}
        out.append(dataclasses.replace(story, score=story.score * factor, score_parts=parts))
        heads[best_category] += 1
        taken[best_category] += 1
    return out


def score_parts(
    story: Story, articles: Mapping[str, Article], now: datetime, weights: RankWeights
) -> dict[str, float]:
    """The parts of a story's score, each a float, plus the score itself under "score"."""
    everything = [articles[i] for i in dict.fromkeys(story.article_ids) if i in articles]
    # a syndicated copy or a second URL of one article is one entry and one voice
    members = [group[0] for group in duplicate_groups(everything)]
    times = [_utc(a.timestamp) for a in members]
    first = min([*times, *([_utc(story.first_seen)] if story.first_seen else [])], default=now)
    last = max(times, default=_utc(story.updated) if story.updated else first)
    outlets: dict[str, float] = {}
    for article in members:  # one voice per source, at its highest weight
        outlets[article.source_id] = max(outlets.get(article.source_id, 0.0), article.weight)
    median_age = statistics.median(_hours(now - t) for t in times) if times else _hours(now - first)
    recent = sum(1 for t in times if _hours(now - t) <= weights.velocity_hours)
    velocity = recent / weights.velocity_hours if weights.velocity_hours > 0 else 0.0
    languages = {a.language.lower().split("-")[0] for a in members if a.language}
    parts = {
        "sources": float(len(outlets)),
        "languages": float(len(languages)),
        "weighted_sources": float(sum(outlets.values())),
        "articles": float(len(members)),
        "copies": float(len(everything) - len(members)),
        "age_hours": _hours(now - first),
        "last_hours": _hours(now - last),
        "median_age_hours": median_age,
        "recency": 0.5 ** (median_age / weights.half_life_hours),
        "velocity": velocity,
    }
    parts["source_points"] = weights.sources * parts["weighted_sources"]
    parts["article_points"] = weights.articles * math.log1p(parts["articles"])
    parts["velocity_points"] = weights.velocity * math.log1p(velocity)
    mass = parts["source_points"] + parts["article_points"] + parts["velocity_points"]
    parts["score"] = mass * parts["recency"] if members else 0.0
    return parts


def explain(story: Story) -> str:
    """Why the story ranks where it does: "5 sources in 2 languages, first seen 3 h ago"."""
    parts = story.score_parts
    articles = int(parts.get("articles", len(story.article_ids)))
    bits: list[str] = []
    if "sources" in parts:
        sources = int(parts["sources"])
        bits.append(_plural(sources, "source"))
        if parts.get("languages", 0) > 1:
            bits[-1] += f" in {int(parts['languages'])} languages"
        if articles > sources:
            bits[-1] += f" ({_plural(articles, 'article')})"
    else:
        bits.append(_plural(articles, "article"))
    if "age_hours" in parts:
        bits.append(f"first seen {_ago(parts['age_hours'])}")
    return ", ".join(bits)


def _scored(
    story: Story, articles: Mapping[str, Article], now: datetime, weights: RankWeights
) -> Story:
    parts = score_parts(story, articles, now, weights)
    return dataclasses.replace(story, score=parts["score"], score_parts=parts)


def _ago(hours: float) -> str:
    if hours < 1 / 60:
        return "just now"
    if hours < 1:
        return f"{round(hours * 60)} min ago"
    if hours < 48:
        return f"{round(hours)} h ago"
    return f"{round(hours / 24)} days ago"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _hours(delta: timedelta) -> float:
    """Hours in a timedelta, never negative (clocks of sources run ahead)."""
    return max(0.0, delta.total_seconds() / 3600)


def _utc(when: datetime) -> datetime:
    """Aware UTC; naive times are taken as UTC already."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
