"""The usage ledger, the daily budget and concurrent summaries, against the loopback stub."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aggregator.cli.main import main
from aggregator.pipeline import FrontPage, SummariseReport, Window, summarise_stage
from aggregator.records import Article, LLMUsageLine, Story, Summary
from aggregator.render.strings import catalogue
from aggregator.render.views import summaries_line
from aggregator.settings import LLMSettings, ModelPrice, Settings
from aggregator.store import Storage
from aggregator.summarise.ledger import local_day, totals, usage_report
from aggregator.summarise.llm import LLMClient, usage_cost
from aggregator.summarise.summariser import Summariser
from tests.support.openai_stub import OpenAIStub, Reply

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
TOWNS = ["Arlen", "Bramby", "Coldwick", "Dunmore", "Eastfold", "Farrow", "Glenby", "Holt"]


def town_articles(town: str, index: int) -> list[Article]:
    """Two sources on one event: a town opens its library (a grounded answer exists)."""
    books = 1000 * (index + 2)
    return [
        Article(
            id=f"{town}-1", url=f"https://one.example/{town}", title=f"{town} opens a new library",
            source_id="one", source_name="One", published=NOW - timedelta(hours=2),
            text=f"The town of {town} opened its new public library on Monday morning. "
                 f"The library holds {books} books and has a reading room for children.",
        ),
        Article(
            id=f"{town}-2", url=f"https://two.example/{town}", title=f"Library opens in {town}",
            source_id="two", source_name="Two", published=NOW - timedelta(hours=1),
            text=f"Residents of {town} queued outside the new library before it opened. "
                 f"The mayor said the building cost {index + 2} million euros to complete.",
        ),
    ]  # fmt: skip


def town_answer(request: dict[str, Any]) -> Reply:
    """A grounded, cited answer for whichever town the request is about; slow, so that
    concurrent requests overlap."""
    text = request["messages"][1]["content"]
    index = next(i for i, town in enumerate(TOWNS) if f"Title: {town} opens" in text)
    town = TOWNS[index]
    answer = {
        "headline": f"{town} opens its new public library",
        "sentences": [
            {"text": f"A new library with {1000 * (index + 2)} books opened in {town} on "
                     "Monday, with a room for children.", "citations": [1]},
            {"text": f"Residents queued before the opening, and the mayor put its cost at "
                     f"{index + 2} million euros.", "citations": [2]},
        ],
    }  # fmt: skip
    return Reply(content=json.dumps(answer), delay=0.15)


def front(count: int = len(TOWNS)) -> FrontPage:
    stories, articles = [], {}
    for index, town in enumerate(TOWNS[:count]):
        members = town_articles(town, index)
        articles.update((a.id, a) for a in members)
        stories.append(Story(id=f"s-{town.lower()}", article_ids=tuple(a.id for a in members)))
    return FrontPage(stories, articles)


@pytest.fixture
def stub(openai_server: OpenAIStub) -> OpenAIStub:
    return openai_server.reset([town_answer])


def settings_for(stub: OpenAIStub, **llm: Any) -> Settings:
    values: dict[str, Any] = {"model": "stub-model", "timeout": 10, "max_retries": 0} | llm
    return Settings(llm=LLMSettings(base_url=stub.base_url, **values))


def summarise(
    storage: Storage, settings: Settings, page: FrontPage | None = None
) -> SummariseReport:
    window = Window(until=NOW, since=NOW - timedelta(hours=24))
    return summarise_stage(storage, settings, window, front=page or front())


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    with Storage(f"sqlite:///{tmp_path / 'usage.db'}") as opened:
        yield opened


def stored(storage: Storage) -> dict[str, tuple[object, ...]]:
    """What a reader sees of each stored summary (its creation time aside)."""
    summaries = storage.summaries(s.id for s in front().stories)
    return {
        k: (s.headline, s.sentences, s.method, s.model, s.input_hash, s.note)
        for k, s in summaries.items()
    }


# --- concurrency --------------------------------------------------------------------------------


def test_concurrency_overlaps_requests_and_stores_what_one_at_a_time_stores(
    stub: OpenAIStub, tmp_path: Path
) -> None:
    results = {}
    for concurrency in (1, 4):
        stub.reset([town_answer])
        with Storage(f"sqlite:///{tmp_path / f'c{concurrency}.db'}") as storage:
            report = summarise(storage, settings_for(stub, concurrency=concurrency))
            results[concurrency] = stored(storage)
            lines = storage.llm_usage("2026-01-01")
        assert report.written == report.llm == len(TOWNS), report
        assert report.llm_calls == len(stub.requests) == len(TOWNS)
        assert stub.max_in_flight == concurrency
        assert totals(lines).calls == len(TOWNS)
    assert results[1] == results[4]
    assert {v[2] for v in results[4].values()} == {"llm"}


def test_the_per_run_budget_holds_under_concurrency(stub: OpenAIStub, storage: Storage) -> None:
    report = summarise(storage, settings_for(stub, concurrency=4, max_calls_per_run=3))
    assert len(stub.requests) == 3 and report.llm_calls == 3
    assert report.llm == 3 and report.fallback_reasons == {"budget": len(TOWNS) - 3}


def test_the_breaker_opens_once_under_concurrency(
    stub: OpenAIStub, storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    stub.reset([Reply(content="{}", delay=1.0)])  # every request outlasts the timeout
    settings = settings_for(stub, concurrency=4, timeout=0.3)
    with caplog.at_level(logging.WARNING):
        report = summarise(storage, settings)
    assert report.breaker_open and report.llm == 0
    # four in flight together; the first timeout frees a thread for one more request; after
    # the second nothing more is sent: at most concurrency + breaker_failures - 1 requests
    assert 4 <= len(stub.requests) <= 4 + 2 - 1
    opened = [r for r in caplog.records if "LLM calls stopped" in r.getMessage()]
    assert len(opened) == 1


# --- the ledger ---------------------------------------------------------------------------------


def test_the_ledger_records_calls_tokens_and_cost_per_day_model_and_purpose(
    stub: OpenAIStub, storage: Storage
) -> None:
    prices = {"stub-model": ModelPrice(input_per_million=2.0, output_per_million=8.0)}
    summarise(storage, settings_for(stub, prices=prices), front(3))
    [line] = storage.llm_usage("2026-01-01")
    today = datetime.now(UTC).date().isoformat()
    assert (line.day, line.model, line.purpose, line.calls) == (today, "stub-model", "summary", 3)
    assert line.prompt_tokens > 0 and line.completion_tokens > 0
    assert line.cost == pytest.approx(
        (line.prompt_tokens * 2.0 + line.completion_tokens * 8.0) / 1_000_000
    )
    # a second run adds a row of its own; the sum covers both
    summarise(storage, settings_for(stub, prices=prices), front(5))
    [both] = storage.llm_usage(today, today)
    assert both.calls == 3 + 2  # the first three stories were unchanged: no call


def test_a_model_without_a_price_costs_unknown() -> None:
    assert usage_cost({}, "m", 1000, 1000) is None
    price = {"m": ModelPrice(input_per_million=1.0, output_per_million=3.0)}
    assert usage_cost(price, "m", 1_000_000, 500_000) == pytest.approx(2.5)
    summed = totals([LLMUsageLine("d", "m", "summary", 2, 10, 5, 0.5),
                     LLMUsageLine("d", "x", "summary", 3, 10, 5, None)])  # fmt: skip
    assert (summed.calls, summed.cost, summed.unpriced_calls) == (5, 0.5, 3)
    assert "3 calls unpriced" in summed.describe()
    assert "cost unknown" in totals([LLMUsageLine("d", "x", "ask", 1)]).describe()


def test_the_ledgers_day_is_the_configured_timezones() -> None:
    late = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
    assert local_day(late, "UTC") == "2026-12-03"
    assert local_day(late, "Pacific/Kiritimati") == "2026-12-04"  # UTC+14
    client = LLMClient(LLMSettings(base_url="http://127.0.0.1:9/v1"), timezone="Pacific/Kiritimati")
    assert client.today(late) == "2026-12-04"


# --- the daily budget ---------------------------------------------------------------------------


def _spent_today(storage: Storage, calls: int, tokens: int = 0) -> None:
    today = datetime.now(UTC).date().isoformat()
    storage.save_llm_usage([LLMUsageLine(today, "stub-model", "summary", calls, tokens, 0,
                                         run="earlier-run")])  # fmt: skip


def test_a_used_up_daily_budget_makes_the_run_extractive_and_says_so_once(
    stub: OpenAIStub, storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    _spent_today(storage, 5)
    with caplog.at_level(logging.WARNING):
        report = summarise(storage, settings_for(stub, daily_budget_calls=5), front(4))
    assert stub.requests == [] and report.llm == 0
    assert report.fallback_reasons == {"daily_budget": 4}
    warned = [r for r in caplog.records if "daily LLM budget" in r.getMessage()]
    assert len(warned) == 1 and "5 call(s) is used up" in warned[0].getMessage()
    notes = {s.note for s in storage.summaries(s.id for s in front(4).stories).values()}
    assert all("daily LLM budget" in note for note in notes)


def test_the_daily_budget_counts_this_run_and_earlier_runs_under_concurrency(
    stub: OpenAIStub, storage: Storage
) -> None:
    _spent_today(storage, 2)
    report = summarise(storage, settings_for(stub, daily_budget_calls=5, concurrency=4))
    assert len(stub.requests) == 3 and report.llm == 3
    assert report.fallback_reasons == {"daily_budget": len(TOWNS) - 3}


def test_the_daily_token_budget(stub: OpenAIStub, storage: Storage) -> None:
    _spent_today(storage, 1, tokens=10_000)
    report = summarise(storage, settings_for(stub, daily_budget_tokens=10_000), front(2))
    assert stub.requests == [] and report.fallback_reasons == {"daily_budget": 2}


def test_the_daily_budget_of_another_day_does_not_count(stub: OpenAIStub, storage: Storage) -> None:
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    storage.save_llm_usage([LLMUsageLine(yesterday, "stub-model", "summary", 50, run="old")])
    report = summarise(storage, settings_for(stub, daily_budget_calls=5), front(2))
    assert report.llm == 2


# --- status -------------------------------------------------------------------------------------


def test_status_shows_todays_and_the_weeks_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    now = datetime.now(UTC)
    with Storage(db) as storage:
        storage.save_llm_usage([
            LLMUsageLine(local_day(now, "UTC"), "m1", "summary", 4, 1000, 200, 0.01, run="r1"),
            LLMUsageLine(local_day(now, "UTC"), "m1", "ask", 1, 300, 50, 0.002, run="r2"),
            LLMUsageLine(local_day(now - timedelta(days=3), "UTC"), "m1", "summary", 6, 2000,
                         400, 0.02, run="r0"),
            LLMUsageLine(local_day(now - timedelta(days=9), "UTC"), "m1", "summary", 99, run="x"),
        ])  # fmt: skip
    cfg = tmp_path / "sources.yaml"
    cfg.write_text("settings:\n  llm:\n    daily_budget_calls: 40\nsources: []\n")
    assert main(["status", "--json", "--config", str(cfg), "--db", db]) == 0
    usage = json.loads(capsys.readouterr().out)["llm_usage"]
    assert usage["today"]["calls"] == 5 and usage["today"]["prompt_tokens"] == 1300
    assert usage["today"]["cost"] == pytest.approx(0.012)
    assert (usage["today"]["budget_calls"], usage["today"]["budget_tokens"]) == (40, None)
    assert usage["last_7_days"]["calls"] == 11  # the day 9 days ago is outside
    assert [d["day"] for d in usage["last_7_days"]["days"]] == sorted(
        {local_day(now, "UTC"), local_day(now - timedelta(days=3), "UTC")}
    )
    assert main(["status", "--config", str(cfg), "--db", db]) == 0
    printed = capsys.readouterr().out
    assert "LLM usage today" in printed and "5 calls, 1,300 tokens in, 250 out" in printed
    assert "cost 0.0120; daily budget: 5 of 40 calls" in printed


def test_usage_report_without_lines() -> None:
    report = usage_report([], NOW, "UTC")
    today = report.json()["today"]
    assert today == {"day": "2026-12-03", "calls": 0, "prompt_tokens": 0,
                     "completion_tokens": 0, "cost": None, "unpriced_calls": 0,
                     "budget_calls": None, "budget_tokens": None}  # fmt: skip
    assert report.budget() == ""
    assert usage_report([], NOW, "UTC", 10, 5000).budget() == (
        "daily budget: 0 of 10 calls, 0 of 5,000 tokens"
    )
    assert report.since == "2026-11-27"


def test_summariser_without_llm_records_nothing(storage: Storage) -> None:
    report = summarise(storage, Settings(), front(2))
    assert report.written == 2 and report.llm == 0 and storage.llm_usage("2000-01-01") == []
    assert Summariser(LLMSettings()).client is None


# --- the footer -------------------------------------------------------------------------------


def test_the_footer_says_who_wrote_the_summaries() -> None:
    def summary(method: str, model: str) -> Summary:
        return Summary("s", "h", (), method, model)  # type: ignore[arg-type]

    written = [summary("llm", "llama3.1")] * 5 + [summary("llm", "qwen2.5")] * 2
    written += [summary("extractive", "extractive")] * 3
    assert summaries_line(written) == "Summaries: 5 by llama3.1, 2 by qwen2.5, 3 extractive."
    assert summaries_line(written[-3:]) == "Summaries: 3 extractive."
    assert summaries_line([]) == ""
    assert summaries_line(written[:1], catalogue("zh")) == "摘要：1 篇由 llama3.1 撰写。"
    assert "llama3.1 द्वारा" in summaries_line(written[:1], catalogue("hi"))


def test_the_ledger_on_both_databases(db_url: str) -> None:
    """Rows replace their own totals (a run writes its running totals), sums go over runs,
    a sum's cost is None only when no row of it had a price."""
    with Storage(db_url) as storage:
        storage.save_llm_usage([LLMUsageLine("2026-12-02", "m", "summary", 1, 10, 2, 0.5, "r1")])
        storage.save_llm_usage([
            LLMUsageLine("2026-12-02", "m", "summary", 3, 30, 6, 1.5, "r1"),  # r1's new totals
            LLMUsageLine("2026-12-03", "m", "summary", 2, 20, 4, None, "r1"),  # past midnight
            LLMUsageLine("2026-12-03", "m", "summary", 5, 50, 10, 2.0, "r2"),
            LLMUsageLine("2026-12-03", "m", "ask", 1, 5, 1, None, "r3"),
        ])  # fmt: skip
        lines = storage.llm_usage("2026-12-02")
        assert [(x.day, x.purpose, x.calls, x.prompt_tokens, x.cost) for x in lines] == [
            ("2026-12-02", "summary", 3, 30, 1.5),
            ("2026-12-03", "ask", 1, 5, None),
            ("2026-12-03", "summary", 7, 70, 2.0),
        ]
        assert [x.calls for x in storage.llm_usage("2026-12-03", "2026-12-03")] == [1, 7]
        assert [x.calls for x in storage.llm_usage("2026-12-03", exclude_run="r2")] == [1, 2]


def test_a_failed_write_stops_the_stories_not_started_yet(
    stub: OpenAIStub, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(_summary: Summary) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(storage, "save_summary", full_disk)
    with pytest.raises(OSError, match="disk full"):
        summarise(storage, settings_for(stub, concurrency=2))
    assert len(stub.requests) < len(TOWNS)  # the queue was dropped, not worked through
