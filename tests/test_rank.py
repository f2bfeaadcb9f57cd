"""Hot ranking: distinct sources beat volume, recency decays, parts kept, explanation line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.rank import explain, rank_stories
from aggregator.records import Article, Story
from aggregator.settings import RankSettings

NOW = datetime(2024, 5, 2, 18, 0, tzinfo=UTC)
UNBALANCED = RankSettings(category_decay=1.0)  # these tests rank without category balance


def article(ident: str, source: str, hours_ago: float, weight: float = 1.0) -> Article:
    return Article(
        id=ident,
        url=f"https://{source}.example/{ident}",
        title=f"title {ident}",
        source_id=source,
        source_name=source.title(),
        published=NOW - timedelta(hours=hours_ago),
        weight=weight,
    )


def story(ident: str, members: list[Article]) -> Story:
    members = sorted(members, key=lambda a: a.timestamp)
    return Story(
        id=ident,
        article_ids=tuple(a.id for a in members),
        title=ident,
        first_seen=members[0].timestamp,
        updated=members[-1].timestamp,
    )


def rank(
    *stories_and_articles: tuple[Story, list[Article]], weights: RankSettings | None = None
) -> list[Story]:
    articles = {a.id: a for _, members in stories_and_articles for a in members}
    stories = [s for s, _ in stories_and_articles]
    return rank_stories(stories, articles, NOW, weights or UNBALANCED)


def test_distinct_sources_beat_many_articles_from_one_outlet() -> None:
    wide = [article(f"w{i}", f"outlet{i}", 2) for i in range(4)]
    loud = [article(f"l{i}", "spammy", 2) for i in range(12)]
    ranked = rank((story("loud", loud), loud), (story("wide", wide), wide))
    assert [s.id for s in ranked] == ["wide", "loud"]
    assert ranked[1].score_parts.sources == 1.0  # twelve articles, one voice
    assert ranked[1].score_parts.articles == 12.0


def test_source_weight_counts_once_per_source_at_its_highest() -> None:
    members = [article("a", "big", 1, weight=3.0), article("b", "big", 1, weight=1.0)]
    (ranked,) = rank((story("s", members), members))
    assert ranked.score_parts.weighted_sources == pytest.approx(3.0)


def test_recency_decays_with_half_life() -> None:
    fresh = [article(f"f{i}", f"o{i}", 1) for i in range(3)]
    old = [article(f"o{i}", f"o{i}", 13) for i in range(3)]  # two half-lives older
    ranked = rank((story("old", old), old), (story("fresh", fresh), fresh))
    assert [s.id for s in ranked] == ["fresh", "old"]
    by_id = {s.id: s for s in ranked}
    assert by_id["fresh"].score_parts.recency == pytest.approx(0.5 ** (1 / 6))
    assert by_id["old"].score_parts.recency == pytest.approx(0.25 * 0.5 ** (1 / 6))
    faster = rank(
        (story("old", old), old), weights=RankSettings(half_life_hours=1, category_decay=1.0)
    )
    assert faster[0].score < by_id["old"].score


def test_one_late_article_does_not_make_an_old_story_new() -> None:
    members = [article(f"a{i}", f"o{i}", 20) for i in range(4)] + [article("late", "o9", 0)]
    (ranked,) = rank((story("s", members), members))
    assert ranked.score_parts.median_age_hours == pytest.approx(20)
    assert ranked.score_parts.last_hours == 0.0
    assert ranked.score_parts.velocity == pytest.approx(1 / 3)  # one article in 3 hours


def test_parts_are_floats_and_explain_them() -> None:
    members = [article(f"a{i}", f"o{i % 5}", 3 + i / 10) for i in range(7)]
    (ranked,) = rank((story("s", members), members))
    parts = ranked.score_parts
    for key in ("sources", "weighted_sources", "articles", "age_hours", "recency", "velocity"):
        assert isinstance(getattr(parts, key), float)
    assert parts.score == ranked.score > 0
    assert parts.age_hours == pytest.approx(3.6)
    assert explain(ranked) == "5 sources (7 articles), first seen 4 h ago"


def test_explain_wording() -> None:
    one = [article("x", "solo", 0.5)]
    (ranked,) = rank((story("s", one), one))
    assert explain(ranked) == "1 source, first seen 30 min ago"
    unranked = Story(id="u", article_ids=("a", "b"))
    assert explain(unranked) == "2 articles"


def test_ties_and_missing_articles_are_deterministic() -> None:
    a = [article("a1", "o1", 2)]
    b = [article("b1", "o1", 2)]
    ranked = rank((story("zz", b), b), (story("aa", a), a))
    assert ranked[0].score == ranked[1].score and [s.id for s in ranked] == ["aa", "zz"]
    ghost = Story(id="ghost", article_ids=("gone",), first_seen=NOW - timedelta(hours=1))
    (scored,) = rank_stories([ghost], {}, NOW)
    assert scored.score == 0.0 and scored.score_parts.age_hours == pytest.approx(1)


def test_future_timestamps_and_naive_now_are_safe() -> None:
    ahead = [article("a", "o", -2)]  # a source clock two hours fast
    (ranked,) = rank_stories([story("s", ahead)], {"a": ahead[0]}, NOW.replace(tzinfo=None))
    assert ranked.score_parts.age_hours == 0.0 and ranked.score_parts.recency == 1.0


def test_story_first_seen_before_the_window_counts_for_age() -> None:
    members = [article("a", "o", 2)]
    earlier = Story(id="s", article_ids=("a",), first_seen=NOW - timedelta(hours=30))
    (ranked,) = rank_stories([earlier], {"a": members[0]}, NOW)
    assert ranked.score_parts.age_hours == pytest.approx(30)
    assert explain(ranked) == "1 source, first seen 30 h ago"


def test_category_balance_lets_other_desks_through() -> None:
    from dataclasses import replace

    pairs = []
    for i, (category, outlets) in enumerate(
        [("sport", 5), ("sport", 5), ("sport", 5), ("politics", 3), ("science", 2)]
    ):
        members = [article(f"{i}-{j}", f"o{j}", 2) for j in range(outlets)]
        pairs.append((replace(story(f"s{i}", members), category=category), members))
    plain = [s.category for s in rank(*pairs)]
    assert plain == ["sport", "sport", "sport", "politics", "science"]
    balanced = rank(*pairs, weights=RankSettings(category_decay=0.5))
    assert [s.category for s in balanced] == ["sport", "politics", "sport", "science", "sport"]
    assert balanced[2].score_parts.balance == 0.5
    assert balanced[2].score == pytest.approx(balanced[2].score_parts.score)
    assert [s.score for s in balanced] == sorted((s.score for s in balanced), reverse=True)


def test_explain_names_languages_when_several() -> None:
    members = [
        replace_language(article("a", "one", 1), "en"),
        replace_language(article("b", "two", 2), "de-DE"),
        replace_language(article("c", "three", 3), "en-GB"),
    ]
    (ranked,) = rank((story("s", members), members))
    assert explain(ranked) == "3 sources in 2 languages, first seen 3 h ago"


def replace_language(a: Article, language: str) -> Article:
    from dataclasses import replace

    return replace(a, language=language)
