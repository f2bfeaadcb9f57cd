"""The demo digest against a real OpenAI-compatible model, story by story.

Skipped unless ``BENCH_LLM_URL`` is set (``../shared/tools/local-llm.sh`` starts a model on
127.0.0.1; ``BENCH_LLM_MODEL`` names it, ``BENCH_LLM_LANGUAGE`` sets the site's language). It
runs the demo's whole pipeline once with the LLM, printing per summarised story: who wrote it,
its sentences, the distinct sources they cite, the items kept, what the gates and grounding
dropped, the tokens and the seconds; then it runs again and prints the calls of that rerun
(zero: nothing changed).

Run from the repository root: ``BENCH_LLM_URL=http://127.0.0.1:8013/v1 .venv/bin/python -m
benchmarks llm_digest``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

from aggregator.demo.server import DemoServer
from aggregator.pipeline import run_once
from aggregator.records import Article, Story, Summary
from aggregator.store.storage import Storage
from aggregator.summarise.summariser import Summariser
from tests.test_llm_digest import demo_with_llm


@dataclass
class _Row:
    story: Story
    summary: Summary
    seconds: float
    calls: int
    tokens: int


def run() -> None:
    url = os.environ.get("BENCH_LLM_URL", "")
    if not url:
        print("llm_digest: skipped, set BENCH_LLM_URL to an OpenAI-compatible base URL")
        return
    model = os.environ.get("BENCH_LLM_MODEL", "qwen2.5-1.5b-instruct")
    language = os.environ.get("BENCH_LLM_LANGUAGE", "en")
    rows: list[_Row] = []
    original = Summariser.summarise

    def timed(self: Summariser, story: Story, articles: Sequence[Article]) -> Summary:
        usage = self.usage
        calls, tokens = usage.calls, usage.prompt_tokens + usage.completion_tokens
        started = perf_counter()
        summary = original(self, story, articles)
        spent = usage.prompt_tokens + usage.completion_tokens - tokens
        rows.append(_Row(story, summary, perf_counter() - started, usage.calls - calls, spent))
        return summary

    Summariser.summarise = timed  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp, DemoServer() as demo:
            out, data = Path(tmp) / "site", Path(tmp) / "data"
            config = demo_with_llm(demo.base_url, url, out, data, language=language, model=model)
            with Storage(f"sqlite:///{Path(tmp) / 'demo.db'}") as storage:
                started = perf_counter()
                first = run_once(config, storage, out_dir=out)
                elapsed = perf_counter() - started
                members = storage.articles_by_id(_ids(rows))
                _print(rows, members, model)
                print(f"first run: {first.summarise} ({elapsed:.0f} s)")
                rows.clear()
                again = run_once(config, storage, out_dir=out)
                print(f"rerun: {again.summarise.llm_calls} LLM calls")
    finally:
        Summariser.summarise = original  # type: ignore[method-assign]


def _ids(rows: Sequence[_Row]) -> list[str]:
    return sorted({i for row in rows for i in row.story.article_ids})


def _print(rows: Sequence[_Row], members: dict[str, Article], model: str) -> None:
    print(f"model {model}: {len(rows)} stories summarised")
    for row in rows:
        summary = row.summary
        cited = {members[i].source_id for s in summary.sentences for i in s.citations}
        items = summary.items
        kept = (
            f"{len(items.talking_points)} points, {len(items.perspectives)} perspectives, "
            f"{len(items.timeline)} dated, why {'yes' if items.why_it_matters else 'no'}"
        )
        print(
            f"- {summary.method:10} {len(summary.sentences)} sentences, {len(cited)} sources "
            f"cited of {len({members[i].source_id for i in row.story.article_ids})}"
            f"; {kept}; {row.calls} calls, {row.tokens} tokens, {row.seconds:.0f} s: "
            f"{summary.headline[:70]!r}"
        )
        if summary.note:
            print(f"    note: {summary.note[:400]}")
