"""Which stories make the page: enough distinct sources, at most max_stories, settings wired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aggregator.pipeline import select_front_page
from aggregator.rank import DEFAULT_WEIGHTS, rank_stories
from aggregator.records import Article, Score, Story
from aggregator.settings import RankSettings, Settings


def _story(ident: str, sources: float) -> Story:
    return Story(id=ident, article_ids=(), score_parts=Score(score=sources, sources=sources))


def test_hot_needs_two_sources_by_default_and_is_configurable() -> None:
    ranked = [_story("wide", 5), _story("solo", 1), _story("pair", 2)]
    assert [s.id for s in select_front_page(ranked, Settings())] == ["wide", "pair"]
    everything = Settings(min_sources=1)
    assert [s.id for s in select_front_page(ranked, everything)] == ["wide", "solo", "pair"]
    assert [s.id for s in select_front_page(ranked, Settings(max_stories=1))] == ["wide"]


def test_rank_settings_become_the_weights() -> None:
    custom = Settings(rank=RankSettings(half_life_hours=2, category_decay=1.0))
    now = datetime(2025, 1, 1, tzinfo=UTC)
    article = Article(id="a", url="https://x.example/a", title="t", source_id="x",
                      source_name="X", published=now - timedelta(hours=4))  # fmt: skip
    story = Story(id="s", article_ids=("a",), first_seen=article.published)
    (ranked,) = rank_stories([story], {"a": article}, now, custom.rank)
    assert ranked.score_parts is not None and ranked.score_parts.recency == 0.25  # 2 half-lives
    assert Settings().rank == DEFAULT_WEIGHTS  # one default: category_decay 0.85
    assert Settings().rank.category_decay == 0.85
