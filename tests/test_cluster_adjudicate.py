"""The LLM as clustering's adjudicator (cluster.adjudicate) against the loopback OpenAI stub:
it decides the uncertain merges, its verdicts are kept so a rerun asks nothing, and without an
answer (budget spent, endpoint down) the offline decision stands."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.cluster.adjudicate import (
    MAX_ANSWER_TOKENS,
    LLMAdjudicator,
    question_text,
    verdict_key,
)
from aggregator.cluster.cluster import ClusterResult, cluster_articles
from aggregator.cluster.features import lead
from aggregator.pipeline import (
    RenderReport,
    SummariseReport,
    Window,
    cluster_stage,
    digest_counts,
)
from aggregator.records import Article, Story
from aggregator.settings import LLMSettings, Settings
from aggregator.store.storage import Storage
from aggregator.summarise.llm import LLMClient
from tests.support.metrics import bcubed
from tests.support.openai_stub import OpenAIStub, Reply, reply_json
from tests.support.verdicts import DEMO_NOW, always, demo_window, groups, oracle, shown

ESTMARK = {"estmark-budget", "estmark-rates"}


@pytest.fixture(scope="module")
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub([]) as server:
        yield server


@pytest.fixture(scope="module")
def window() -> tuple[list[Article], dict[str, str]]:
    """The demo's 24 h window as feeds of teasers would give it (12 words of text): too little
    for the offline check to compare, so the uncertain merges are the LLM's to decide."""
    articles, gold = demo_window()
    return [replace(a, text=lead(a.text, 12)) for a in articles], gold


def lines(articles: list[Article], gold: dict[str, str]) -> dict[str, str]:
    return {shown(a): gold[a.id] for a in articles}


def client_for(base_url: str, **changes: object) -> LLMClient:
    settings = LLMSettings(base_url=base_url, api_key="sk-test", model="stub-model")
    return LLMClient(settings.model_copy(update={"max_retries": 0, **changes}))


def events(result: ClusterResult, gold: dict[str, str]) -> list[set[str]]:
    return [{gold[a] for a in story.article_ids} for story in result.stories]


def story_sets(result: ClusterResult) -> list[tuple[str, ...]]:
    return sorted(story.article_ids for story in result.stories)


def test_the_llm_says_different_and_estmarks_two_events_stay_two_stories(
    stub: OpenAIStub, window: tuple[list[Article], dict[str, str]]
) -> None:
    articles, gold = window
    assert any(e >= ESTMARK for e in events(cluster_articles(articles), gold)), "offline: one"
    titles = lines(articles, gold)
    stub.reset([oracle(titles)])
    with client_for(stub.base_url) as client:
        adjudicator = LLMAdjudicator(client, budget_tokens=50_000)
        result = cluster_articles(articles, adjudicator=adjudicator)
    found = events(result, gold)
    assert {"estmark-budget"} in found and {"estmark-rates"} in found
    assert all(len(e) == 1 for e in found)
    asked = [groups(request) for request in stub.requests]
    estmark = [
        (left, right)
        for left, right in asked
        if {titles[t] for t in left} | {titles[t] for t in right} == ESTMARK
    ]
    assert estmark, "the rate cut and the budget deal were put to the LLM"
    usage = adjudicator.usage  # each "different" is asked a second time, swapped
    second = result.review.vetoed + usage.unconfirmed  # confirmed or overruled
    assert usage.asked == len(stub.requests) == result.review.adjudicated + second
    assert usage.different >= 1 and usage.tokens > 0
    request = stub.requests[0]
    assert request["max_tokens"] == MAX_ANSWER_TOKENS  # not the summaries' cap
    assert "same_event" in request["messages"][0]["content"]


def test_a_different_parts_only_when_the_model_says_it_again_asked_the_other_way_round(
    stub: OpenAIStub, window: tuple[list[Article], dict[str, str]]
) -> None:
    """A model that answers "different" to each question the first time it sees it and "same"
    once the groups are swapped parts nothing: every "different" is asked again, reversed."""
    articles, _gold = window
    offline = cluster_articles(articles)
    seen: set[frozenset[str]] = set()

    def first_time_different(request: dict[str, object]) -> Reply:
        left, right = groups(request)  # type: ignore[arg-type]
        pair = frozenset(["|".join(left), "|".join(right)])
        first = pair not in seen
        seen.add(pair)
        return reply_json({"event_a": "a", "event_b": "b", "same_event": not first})

    stub.reset([first_time_different])
    with client_for(stub.base_url) as client:
        adjudicator = LLMAdjudicator(client, 50_000)
        result = cluster_articles(articles, adjudicator=adjudicator)
    usage = adjudicator.usage
    assert usage.different == usage.unconfirmed == result.review.adjudicated >= 2, usage
    assert usage.asked == len(stub.requests) == 2 * usage.different
    assert usage.same == usage.unconfirmed  # every "same" was a second asking
    assert result.review.vetoed == 0
    assert story_sets(result) == story_sets(offline)
    pairs = [tuple(map(tuple, groups(r))) for r in stub.requests]
    firsts, seconds = pairs[: usage.different], pairs[usage.different :]
    assert seconds == [(b, a) for a, b in firsts], "each second asking is the first reversed"
    request = stub.requests[0]
    assert request["temperature"] == 0.0
    assert request["response_format"]["type"] == "json_schema"  # the stub accepts it
    schema = request["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["same_event"] == {"type": "boolean"}


def test_a_different_confirmed_the_other_way_round_parts_the_groups(
    stub: OpenAIStub, window: tuple[list[Article], dict[str, str]]
) -> None:
    articles, _gold = window
    stub.reset([always(False)])
    with client_for(stub.base_url) as client:
        adjudicator = LLMAdjudicator(client, 50_000)
        result = cluster_articles(articles, adjudicator=adjudicator)
    usage = adjudicator.usage
    assert usage.unconfirmed == 0 and usage.same == 0
    assert result.review.vetoed == result.review.uncertain
    assert usage.asked == 2 * result.review.adjudicated  # each one asked twice


def test_an_llm_never_joins_what_the_full_texts_keep_apart(stub: OpenAIStub) -> None:
    """With the full texts, Estmark's two events are parted offline and the LLM is not even
    asked about them; one that says "same" to everything changes no story."""
    articles, gold = demo_window()
    offline = cluster_articles(articles)
    stub.reset([always(True)])
    with client_for(stub.base_url) as client:
        adjudicator = LLMAdjudicator(client, 50_000)
        result = cluster_articles(articles, adjudicator=adjudicator)
    assert story_sets(result) == story_sets(offline)
    assert {"estmark-budget"} in events(result, gold) and {"estmark-rates"} in events(result, gold)
    assert adjudicator.usage.asked < result.review.uncertain


def test_the_same_verdicts_give_the_same_stories(
    stub: OpenAIStub, window: tuple[list[Article], dict[str, str]]
) -> None:
    articles, gold = window
    runs = []
    for _ in range(2):
        stub.reset([oracle(lines(articles, gold))])
        with client_for(stub.base_url) as client:
            runs.append(cluster_articles(articles, adjudicator=LLMAdjudicator(client, 50_000)))
    assert story_sets(runs[0]) == story_sets(runs[1])
    assert runs[0].review.overruled >= 1


def test_a_rerun_asks_nothing_again(
    stub: OpenAIStub, window: tuple[list[Article], dict[str, str]], tmp_path: Path
) -> None:
    articles, gold = window
    stub.reset([oracle(lines(articles, gold))])
    with Storage(f"sqlite:///{tmp_path / 'v.db'}") as storage:
        with client_for(stub.base_url) as client:
            first = LLMAdjudicator(client, 50_000, storage)
            before = cluster_articles(articles, adjudicator=first)
        asked = len(stub.requests)
        assert asked == first.usage.asked > 0
        with client_for(stub.base_url) as client:
            second = LLMAdjudicator(client, 50_000, storage)
            after = cluster_articles(articles, adjudicator=second)
    assert len(stub.requests) == asked, "no LLM call on a rerun"
    assert second.usage.asked == 0 and second.usage.cached == first.usage.asked
    assert story_sets(after) == story_sets(before)


def test_a_spent_budget_leaves_the_offline_decision(
    stub: OpenAIStub, window: tuple[list[Article], dict[str, str]]
) -> None:
    articles, _gold = window
    offline = cluster_articles(articles)
    stub.reset([always(True)])
    with client_for(stub.base_url) as client:
        adjudicator = LLMAdjudicator(client, budget_tokens=10)
        result = cluster_articles(articles, adjudicator=adjudicator)
    assert stub.requests == []
    assert adjudicator.usage.over_budget == offline.review.uncertain > 0
    assert story_sets(result) == story_sets(offline)


def test_a_budget_for_some_questions_answers_those_and_leaves_the_rest_offline(
    stub: OpenAIStub, window: tuple[list[Article], dict[str, str]]
) -> None:
    articles, gold = window
    stub.reset([oracle(lines(articles, gold))])
    with client_for(stub.base_url) as client:
        adjudicator = LLMAdjudicator(client, budget_tokens=50_000)
        cluster_articles(articles, adjudicator=adjudicator)
        full = adjudicator.usage.tokens
    stub.reset([oracle(lines(articles, gold))])
    with client_for(stub.base_url) as client:
        adjudicator = LLMAdjudicator(client, budget_tokens=full // 2)
        cluster_articles(articles, adjudicator=adjudicator)
    assert adjudicator.usage.asked > 0 and adjudicator.usage.over_budget > 0
    assert adjudicator.usage.tokens <= full // 2


def test_an_llm_that_is_down_leaves_the_offline_decision_and_trips_the_breaker(
    window: tuple[list[Article], dict[str, str]],
) -> None:
    articles, _gold = window
    offline = cluster_articles(articles)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with client_for(f"http://127.0.0.1:{port}/v1", breaker_failures=2) as client:
        adjudicator = LLMAdjudicator(client, budget_tokens=50_000)
        result = cluster_articles(articles, adjudicator=adjudicator)
        assert client.breaker_open
    assert adjudicator.usage.asked == 2  # then the breaker stopped the calls
    assert adjudicator.usage.failed == offline.review.uncertain
    assert story_sets(result) == story_sets(offline)


def test_a_question_reads_the_same_whichever_side_the_linkage_kept(
    window: tuple[list[Article], dict[str, str]],
) -> None:
    from aggregator.cluster.review import Question

    articles, _gold = window
    a, b = tuple(articles[:2]), tuple(articles[2:4])
    one = Question(a, b, 0.1, ("near_threshold",), "", 0.0, True)
    other = Question(b, a, 0.1, ("near_threshold",), "", 0.0, True)
    assert question_text(one) == question_text(other)
    assert verdict_key("m", question_text(one)) != verdict_key("n", question_text(one))
    assert articles[0].title in question_text(one)


def test_the_cluster_stage_asks_the_configured_llm_and_counts_it(
    stub: OpenAIStub, window: tuple[list[Article], dict[str, str]], tmp_path: Path
) -> None:
    """pipeline.cluster_stage with an LLM in settings: verdicts asked, counted and stored; the
    next clustering (an article arrived) asks again only what it has not asked before."""
    articles, gold = window
    stub.reset([oracle(lines(articles, gold))])
    llm = LLMSettings(base_url=stub.base_url, api_key="sk-test", max_retries=0)
    settings = Settings(llm=llm)
    until = DEMO_NOW + timedelta(minutes=1)
    with Storage(f"sqlite:///{tmp_path / 'p.db'}") as storage:
        storage.add_articles(articles[1:])
        first = cluster_stage(storage, settings, Window.last(until, 24))
        asked = len(stub.requests)
        assert first.llm_verdicts == asked > 0 and first.llm_tokens > 0
        assert first.uncertain >= first.vetoed >= 1
        assert digest_counts(first, *_nothing_else())["cluster_llm_verdicts"] == asked
        storage.add_articles(articles[:1])
        second = cluster_stage(storage, settings, Window.last(until, 24))
    assert second.cached_verdicts > 0
    assert len(stub.requests) - asked == second.llm_verdicts < asked
    stories = {tuple(sorted(gold[a] for a in s.article_ids)) for s in storage_stories(tmp_path)}
    assert not any(set(events) >= ESTMARK for events in stories)


def _nothing_else() -> tuple[SummariseReport, RenderReport]:
    return SummariseReport(0, 0, 0, 0, 0), RenderReport(Path("site"), 0)


def storage_stories(tmp_path: Path) -> list[Story]:
    with Storage(f"sqlite:///{tmp_path / 'p.db'}") as storage:
        return storage.stories()


@pytest.mark.skipif(
    not os.environ.get("AGGREGATOR_TEST_LLM_URL"),
    reason="set AGGREGATOR_TEST_LLM_URL (and AGGREGATOR_TEST_LLM_MODEL) to ask a real model",
)
def test_a_real_model_parts_estmarks_two_events_from_teasers(
    window: tuple[list[Article], dict[str, str]],
) -> None:
    """Opt-in: the teaser-only demo window adjudicated by a real model (../shared/tools/
    local-llm.sh starts one); prints what it cost and scored."""
    articles, gold = window
    settings = LLMSettings(
        base_url=os.environ["AGGREGATOR_TEST_LLM_URL"],
        model=os.environ.get("AGGREGATOR_TEST_LLM_MODEL", "qwen2.5-1.5b-instruct"),
        max_retries=0,
        max_tokens=MAX_ANSWER_TOKENS,
    )
    with LLMClient(settings) as client:
        adjudicator = LLMAdjudicator(client, 20_000)
        result = cluster_articles(articles, adjudicator=adjudicator)
    found = {a: s.id for s in result.stories for a in s.article_ids}
    precision, recall, f1 = bcubed([found[a.id] for a in articles], [gold[a.id] for a in articles])
    print(f"real model: P {precision:.3f} R {recall:.3f} F1 {f1:.3f}, {adjudicator.usage}")
    assert not any(e >= ESTMARK for e in events(result, gold))
