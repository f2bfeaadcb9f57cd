"""Clustering with and without an LLM adjudicating its uncertain merges (cluster.review,
cluster.adjudicate): B-cubed on the UCI headlines, the demo's 24 h window and
tests/fixtures/cluster/names.json, offline and with two stand-ins for an LLM on the loopback
OpenAI stub: an oracle that answers from the gold labels (a perfect adjudicator: the upper
bound) and one that says "same event" to everything (the lower bound); these bound what a
real model can do.

Run from the repository root: ``.venv/bin/python -m benchmarks adjudicate``.
``BENCH_ADJUDICATE_LLM_URL`` (and ``BENCH_ADJUDICATE_LLM_MODEL``) adds a row per set for a
real OpenAI-compatible model (``../shared/tools/local-llm.sh`` starts one), with each of its
verdicts compared with the oracle's; UCI is left out of it (a real model on this machine's
CPU takes about 12 minutes for the defaults' 114 questions, more with ``review_margin``
0.5) unless ``BENCH_ADJUDICATE_LLM_UCI=1`` (the defaults) or ``=all`` (both rows).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from time import perf_counter
from typing import Any

from aggregator.cluster.adjudicate import LLMAdjudicator
from aggregator.cluster.cluster import cluster_articles
from aggregator.cluster.features import lead
from aggregator.cluster.review import Question
from aggregator.records import Article
from aggregator.settings import ClusterParams, LLMSettings
from aggregator.summarise.llm import LLMClient
from tests.support.metrics import score_stories
from tests.support.openai_stub import OpenAIStub, Reply
from tests.support.uci import load_uci
from tests.support.verdicts import always, demo_window, oracle, shown
from tests.test_cluster_review import load_names

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
UCI = SHARED / "clustering" / "uci_news_aggregator_first6k" / "articles.tsv"
BUDGET = 10_000_000  # tokens: enough for every question of these sets


def run() -> None:
    sets: list[tuple[str, Callable[[], tuple[list[Article], dict[str, str]]], ClusterParams]] = [
        ("demo 24 h", demo_window, DEFAULTS),
        ("demo 24 h, teasers of 12 words", teasers, DEFAULTS),
        ("names.json", load_names, DEFAULTS),
    ]
    if UCI.is_file():
        sets[:0] = [
            ("uci", lambda: load_uci(UCI), DEFAULTS),
            ("uci, review_margin 0.5", lambda: load_uci(UCI), WIDER),
        ]
    else:
        print(f"uci: skipped, {UCI.resolve()} not found (fresh clone without ../shared/data)")
    with OpenAIStub([]) as stub:
        for label, load, params in sets:
            articles, gold = load()
            titles: dict[str, str] = {}
            for article in articles:  # as the question shows it: title (source)
                titles.setdefault(shown(article), gold[article.id])
            score(label, "offline", articles, gold, params, None, None)
            score(label, "LLM = oracle", articles, gold, params, stub, oracle(titles))
            score(label, "LLM = always same", articles, gold, params, stub, always(True))
            if REAL_URL and _real_rows(label):
                real_model(label, articles, gold, params)


REAL_URL = os.environ.get("BENCH_ADJUDICATE_LLM_URL", "")
REAL_UCI = "BENCH_ADJUDICATE_LLM_UCI"


def _real_rows(label: str) -> bool:
    """Whether the real model answers this set's questions (UCI only when asked for)."""
    if not label.startswith("uci"):
        return True
    wanted = os.environ.get(REAL_UCI, "")
    return wanted == "all" or (wanted == "1" and label == "uci")


class _Recording(LLMAdjudicator):
    """The adjudicator, keeping each question with its verdict."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.decided: list[tuple[Question, bool | None]] = []

    def decide(self, questions: Sequence[Question]) -> list[bool | None]:
        verdicts = super().decide(questions)
        self.decided += zip(questions, verdicts, strict=True)
        return verdicts


def real_model(
    label: str, articles: list[Article], gold: dict[str, str], params: ClusterParams
) -> None:
    """The set clustered with a real model adjudicating; its verdicts against the gold."""
    model = os.environ.get("BENCH_ADJUDICATE_LLM_MODEL", "qwen2.5-1.5b-instruct")
    settings = LLMSettings(base_url=REAL_URL, model=model, max_calls_per_run=100_000)
    started = perf_counter()
    with LLMClient(settings) as client:
        adjudicator = _Recording(client, BUDGET)
        result = cluster_articles(articles, params=params, adjudicator=adjudicator)
    elapsed = perf_counter() - started
    s = score_stories(result.stories, gold)
    usage = adjudicator.usage
    print(
        f"{label}, LLM = {model}: B-cubed P {s.precision:.3f} R {s.recall:.3f} F1 {s.f1:.3f}, "
        f"{len(result.stories)} stories; {usage.asked} questions ({usage.same} same, "
        f"{usage.different} different, {usage.unconfirmed} of them overruled when asked the "
        f"other way round, {usage.failed} failed), {usage.tokens} tokens "
        f"({elapsed:.1f} s)"
    )
    label_of = {a.id: gold[a.id] for a in articles}
    for question, verdict in adjudicator.decided:
        truth = _majority(question.left, label_of) == _majority(question.right, label_of)
        mark = "ok   " if verdict is truth else "WRONG" if verdict is not None else "none "
        print(
            f"  {mark} model {verdict!s:5} gold {truth!s:5} offline {question.offline!s:5} "
            f"{'+'.join(question.reasons)} sim {question.similarity:.3f} "
            f"content {question.content:.3f} name {question.name!r}: "
            f"{question.left[0].title[:50]!r} / {question.right[0].title[:50]!r}"
        )


def _majority(group: Sequence[Article], label_of: dict[str, str]) -> str:
    labels = [label_of.get(a.id, a.id) for a in group]
    return max(sorted(set(labels)), key=labels.count)


DEFAULTS = ClusterParams()
WIDER = ClusterParams(review_margin=0.5)  # more merges count as uncertain: more questions


def teasers() -> tuple[list[Article], dict[str, str]]:
    """The demo window as teaser-only feeds give it: too little text to compare offline."""
    articles, gold = demo_window()
    return [replace(a, text=lead(a.text, 12)) for a in articles], gold


def score(
    label: str,
    mode: str,
    articles: list[Article],
    gold: dict[str, str],
    params: ClusterParams,
    stub: OpenAIStub | None,
    answer: Callable[[dict[str, Any]], Reply] | None,
) -> None:
    started = perf_counter()
    if stub is None or answer is None:
        result, asked, tokens = cluster_articles(articles, params=params), 0, 0
    else:
        stub.reset([answer])
        settings = LLMSettings(base_url=stub.base_url, api_key="sk-bench", max_retries=0)
        with LLMClient(settings.model_copy(update={"max_calls_per_run": 100_000})) as client:
            adjudicator = LLMAdjudicator(client, BUDGET)
            result = cluster_articles(articles, params=params, adjudicator=adjudicator)
        asked, tokens = adjudicator.usage.asked, adjudicator.usage.tokens
    elapsed = perf_counter() - started
    s = score_stories(result.stories, gold)
    review = result.review
    print(
        f"{label}, {mode}: B-cubed P {s.precision:.3f} R {s.recall:.3f} F1 {s.f1:.3f}, "
        f"{len(result.stories)} stories; {review.uncertain} uncertain merges, "
        f"{review.vetoed} kept apart ({review.vetoed_certain} more by their texts); "
        f"{asked} LLM questions, {tokens} tokens ({elapsed:.1f} s)"
    )
