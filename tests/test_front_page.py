"""Which stories make the page: enough distinct sources, at most max_stories, settings wired."""

from __future__ import annotations

from aggregator.pipeline import select_front_page, weights
from aggregator.records import Story
from aggregator.settings import RankSettings, Settings


def _story(ident: str, sources: float) -> Story:
    return Story(id=ident, article_ids=(), score=sources, score_parts={"sources": sources})


def test_hot_needs_two_sources_by_default_and_is_configurable() -> None:
    ranked = [_story("wide", 5), _story("solo", 1), _story("pair", 2)]
    assert [s.id for s in select_front_page(ranked, Settings())] == ["wide", "pair"]
    everything = Settings(min_sources=1)
    assert [s.id for s in select_front_page(ranked, everything)] == ["wide", "solo", "pair"]
    assert [s.id for s in select_front_page(ranked, Settings(max_stories=1))] == ["wide"]


def test_rank_settings_become_the_weights() -> None:
    custom = Settings(rank=RankSettings(half_life_hours=2, category_decay=1.0))
    assert weights(custom).half_life_hours == 2
    assert weights(custom).category_decay == 1.0
    assert weights(Settings()).category_decay == 0.85
