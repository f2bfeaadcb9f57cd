"""The LLM usage ledger as people read it: local days, and the totals ``aggregator status``
shows for today and the last seven days. The rows themselves are ``records.LLMUsageLine``,
written by the pipeline (``LLMClient.usage_lines``) and summed by ``Storage.llm_usage``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from aggregator.records import LLMUsageLine

if TYPE_CHECKING:
    from aggregator.store.storage import Storage


class Spender(Protocol):
    """What count_earlier_runs needs of an LLM client (summarise.llm.LLMClient)."""

    run_id: str

    def today(self) -> str: ...

    def set_spent_before(self, day: str, calls: int, tokens: int) -> None: ...


WEEK = 7  # days `status` sums, today included


def local_day(when: datetime, timezone: str) -> str:
    """The date ``when`` falls on in ``timezone`` (settings.timezone): the ledger's day."""
    return when.astimezone(ZoneInfo(timezone)).date().isoformat()


def days_before(day: str, days: int) -> str:
    """The ISO date ``days`` days before ``day``."""
    return (date.fromisoformat(day) - timedelta(days=days)).isoformat()


@dataclass(frozen=True)
class UsageTotals:
    """Calls, tokens and cost summed over ledger lines."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None  # of the priced lines; None when no line had a price
    unpriced_calls: int = 0  # calls of models without a price (their cost is unknown)

    def json(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": None if self.cost is None else round(self.cost, 6),
            "unpriced_calls": self.unpriced_calls,
        }

    def describe(self) -> str:
        """ "12 calls, 8,100 tokens in, 950 out, cost 0.0021 (3 calls unpriced)"."""
        text = (
            f"{self.calls:,} calls, {self.prompt_tokens:,} tokens in, "
            f"{self.completion_tokens:,} out"
        )
        if self.cost is not None:
            text += f", cost {self.cost:.4f}"
            if self.unpriced_calls:
                text += f" ({self.unpriced_calls:,} calls unpriced)"
        elif self.calls:
            text += ", cost unknown (no llm.prices for the model)"
        return text


def totals(lines: Iterable[LLMUsageLine]) -> UsageTotals:
    calls = prompt = completion = unpriced = 0
    cost: float | None = None
    for line in lines:
        calls += line.calls
        prompt += line.prompt_tokens
        completion += line.completion_tokens
        if line.cost is None:
            unpriced += line.calls
        else:
            cost = (cost or 0.0) + line.cost
    return UsageTotals(calls, prompt, completion, cost, unpriced)


@dataclass(frozen=True)
class UsageReport:
    """Today's usage and the last ``WEEK`` days', from the ledger's lines of those days."""

    timezone: str
    today: str  # the local date
    since: str  # the first day of the week shown
    lines: tuple[LLMUsageLine, ...]  # per day, model and purpose, oldest first
    budget_calls: int | None = None  # settings.llm.daily_budget_calls
    budget_tokens: int | None = None  # settings.llm.daily_budget_tokens

    @property
    def today_totals(self) -> UsageTotals:
        return totals(line for line in self.lines if line.day == self.today)

    @property
    def week_totals(self) -> UsageTotals:
        return totals(self.lines)

    def budget(self) -> str:
        """ "daily budget: 12 of 500 calls, 9,000 of 2,000,000 tokens" ("" without one)."""
        today = self.today_totals
        parts = []
        if self.budget_calls is not None:
            parts.append(f"{today.calls:,} of {self.budget_calls:,} calls")
        if self.budget_tokens is not None:
            used = today.prompt_tokens + today.completion_tokens
            parts.append(f"{used:,} of {self.budget_tokens:,} tokens")
        return f"daily budget: {', '.join(parts)}" if parts else ""

    def json(self) -> dict[str, object]:
        days = sorted({line.day for line in self.lines})
        return {
            "timezone": self.timezone,
            "today": {
                "day": self.today,
                **self.today_totals.json(),
                "budget_calls": self.budget_calls,
                "budget_tokens": self.budget_tokens,
            },
            "last_7_days": {
                "since": self.since,
                **self.week_totals.json(),
                "days": [
                    {"day": day, **totals(x for x in self.lines if x.day == day).json()}
                    for day in days
                ],
            },
            "lines": [
                {
                    "day": line.day,
                    "model": line.model,
                    "purpose": line.purpose,
                    "calls": line.calls,
                    "prompt_tokens": line.prompt_tokens,
                    "completion_tokens": line.completion_tokens,
                    "cost": None if line.cost is None else round(line.cost, 6),
                }
                for line in self.lines
            ],
        }


def usage_report(
    lines: Sequence[LLMUsageLine],
    now: datetime,
    timezone: str,
    budget_calls: int | None = None,
    budget_tokens: int | None = None,
) -> UsageReport:
    """The report of ``lines`` (the ledger from ``report_since(now, timezone)`` on)."""
    today = local_day(now, timezone)
    since = days_before(today, WEEK - 1)
    return UsageReport(timezone, today, since, tuple(lines), budget_calls, budget_tokens)


def report_since(now: datetime, timezone: str) -> str:
    """The first day ``usage_report`` covers: six days before today."""
    return days_before(local_day(now, timezone), WEEK - 1)


def count_earlier_runs(client: Spender, storage: Storage) -> None:
    """Tell ``client`` what the day's other runs spent, so the daily budget counts them all."""
    day = client.today()
    earlier = storage.llm_usage(day, day, exclude_run=client.run_id)
    client.set_spent_before(
        day,
        sum(line.calls for line in earlier),
        sum(line.prompt_tokens + line.completion_tokens for line in earlier),
    )
