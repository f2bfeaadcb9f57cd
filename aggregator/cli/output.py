"""How reports are printed: problem lines on stderr, tables on stdout (rich, imported late)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aggregator.cli.common import console

if TYPE_CHECKING:
    from aggregator.crawl.crawl import CrawlReport
    from aggregator.crawl.probe import Probe
    from aggregator.crawl.status import SourceStatus
    from aggregator.pipeline import ClusterReport, RunReport, SummariseReport
    from aggregator.report import SourcesReport
    from aggregator.sources.load import Source
    from aggregator.summarise.ledger import UsageReport


def print_crawl(report: CrawlReport, *, problems: bool = True) -> None:
    """One line per source with a problem (stderr; not with ``problems`` False, when JSON log
    lines say it), then the summary table (stdout)."""
    from rich.table import Table

    from aggregator.records import FetchStatus

    for outcome in report.outcomes if problems else ():
        if outcome.status is FetchStatus.ERROR:
            print(f"  {outcome.source_id}: {outcome.error}", file=sys.stderr)
    for skipped in report.skipped if problems else ():
        if skipped.gone:
            print(f"  {skipped.source_id}: {skipped.reason}", file=sys.stderr)
    table = Table(title="crawl", title_justify="left")
    headers = ("sources", "fetched", "not modified", "skipped", "failed", "new articles")
    for header in headers:
        table.add_column(header, justify="right")
    sources = len(report.outcomes) + len(report.skipped)
    counts = (sources, report.fetched, report.not_modified, len(report.skipped), report.failed)
    table.add_row(*(str(n) for n in (*counts, report.new_articles)))
    console().print(table)


def print_run(report: RunReport, *, problems: bool = True) -> None:
    if report.crawl is not None:
        print_crawl(report.crawl, problems=problems)
    c, s, r = report.cluster, report.summarise, report.render
    print(f"cluster: {c.articles} articles -> {c.stories} stories ({c.new_stories} new)")
    if c.uncertain:
        print(f"  {cluster_review(c)}")
    print(
        f"summarise: {s.written} written ({s.llm} by the LLM, {s.fallbacks} fallbacks), "
        f"{s.reused} unchanged"
    )
    for line in summary_checks(s):
        print(f"  {line}")
    print(f"render: {r.stories} stories -> {r.path}")
    if report.pruned:
        print(f"retention: {report.pruned} articles past retention_days pruned (text dropped)")


def cluster_review(report: ClusterReport) -> str:
    """One line on the clusterer's uncertain merges and who decided them."""
    line = f"{report.uncertain} uncertain merges, {report.vetoed} kept apart"
    if report.llm_verdicts or report.cached_verdicts or report.llm_unanswered:
        line += (
            f"; LLM verdicts: {report.llm_verdicts} asked ({report.llm_tokens} tokens), "
            f"{report.cached_verdicts} remembered, {report.llm_unanswered} left offline"
        )
    return line


def summary_checks(report: SummariseReport) -> list[str]:
    """What the LLM answer checks did, one line each: counts by reason; the circuit breaker."""
    lines = []
    for label, counts in (
        ("rejected", report.rejected),
        ("dropped", report.dropped),
        ("fallbacks", report.fallback_reasons),
    ):
        if counts:
            by_reason = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
            lines.append(f"{label}: {by_reason}")
    if report.breaker_open:
        lines.append("LLM calls stopped by the circuit breaker (connection failures or timeouts)")
    return lines


def _when(value: datetime | None, now: datetime) -> str:
    from aggregator.crawl.due import describe_wait

    return "-" if value is None else describe_wait(value, now)


def print_status(rows: Sequence[SourceStatus], now: datetime) -> None:
    from rich.table import Table

    table = Table(title=f"sources at {now:%Y-%m-%d %H:%M} UTC", title_justify="left")
    for header in ("source", "state", "last success", "failures", "next fetch", "24 h"):
        table.add_column(header, justify="right" if header in {"failures", "24 h"} else "left")
    table.add_column("last error", overflow="fold")
    for row in rows:
        due = _when(row.next_fetch, now) if row.next_fetch and row.next_fetch > now else "now"
        if row.state.value in {"gone", "disabled"}:
            due = "never"
        table.add_row(
            row.id,
            row.state.value,
            _when(row.last_success, now),
            str(row.consecutive_failures),
            due,
            str(row.articles_24h),
            row.last_error or "",
        )
    console().print(table)


def print_runs(runs: Sequence[Mapping[str, Any]], now: datetime) -> None:
    """The last runs, newest first: when, how long, how each job went and what it counted."""
    from rich.table import Table

    if not runs:
        print("no run recorded yet")
        return
    table = Table(title="last runs", title_justify="left")
    for header in ("started", "took", "outcome", "jobs"):
        table.add_column(header, overflow="fold")
    for run in runs:
        jobs = "; ".join(
            f"{job['job']} {job['outcome']}"
            + (f" ({job['error']})" if job.get("error") else "")
            + "".join(f", {k} {v}" for k, v in (job.get("counts") or {}).items() if v)
            for job in run["jobs"]
        )
        took = (run["finished"] - run["started"]).total_seconds()
        table.add_row(_when(run["started"], now), f"{took:.1f} s", run["outcome"], jobs)
    console().print(table)


def print_usage(usage: UsageReport) -> None:
    """LLM usage today and over the last 7 days (the ledger), then per day, model, purpose."""
    from rich.table import Table

    budget = f"; {usage.budget()}" if usage.budget() else ""
    print(
        f"LLM usage today ({usage.today}, {usage.timezone}): "
        f"{usage.today_totals.describe()}{budget}"
    )
    print(f"LLM usage since {usage.since}: {usage.week_totals.describe()}")
    if not usage.lines:
        return
    table = Table(title="LLM usage by day", title_justify="left")
    for header in ("day", "model", "purpose", "calls", "tokens in", "tokens out", "cost"):
        table.add_column(
            header, justify="left" if header in {"day", "model", "purpose"} else "right"
        )
    for line in reversed(usage.lines):  # newest day first, as the runs
        table.add_row(
            line.day,
            line.model,
            line.purpose,
            f"{line.calls:,}",
            f"{line.prompt_tokens:,}",
            f"{line.completion_tokens:,}",
            "-" if line.cost is None else f"{line.cost:.4f}",
        )
    console().print(table)


def status_json(
    rows: Sequence[SourceStatus],
    now: datetime,
    runs: Sequence[Mapping[str, Any]] = (),
    usage: UsageReport | None = None,
) -> dict[str, object]:
    from aggregator.times import iso

    out: list[dict[str, object]] = []
    for row in rows:
        out.append(
            {
                "id": row.id,
                "name": row.name,
                "url": row.url,
                "state": row.state.value,
                "last_success": iso(row.last_success),
                "last_fetched": iso(row.last_fetched),
                "last_error": row.last_error,
                "consecutive_failures": row.consecutive_failures,
                "next_fetch": iso(row.next_fetch),
                "articles_24h": row.articles_24h,
            }
        )
    recorded = [
        {**run, "started": iso(run["started"]), "finished": iso(run["finished"])} for run in runs
    ]
    out_json: dict[str, object] = {"generated": iso(now), "sources": out, "runs": recorded}
    if usage is not None:
        out_json["llm_usage"] = usage.json()
    return out_json


def print_probes(sources: Sequence[Source], probes: Sequence[Probe]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    for column in ("source", "status", "format", "items", "newest item", "full text", "problem"):
        table.add_column(column, overflow="fold")
    for source, probe in zip(sources, probes, strict=True):
        newest = probe.newest.strftime("%Y-%m-%d %H:%M") if probe.newest else "-"
        full = ("yes" if probe.full_text else "teaser") if probe.ok and probe.items else "-"
        table.add_row(
            source.id,
            probe.status if probe.ok else f"[red]{probe.status}[/red]",
            probe.format or "-",
            str(probe.items),
            newest,
            full,
            probe.error,
        )
    width = None if sys.stdout.isatty() else 160
    Console(width=width, soft_wrap=False, highlight=False).print(table)


def print_sources_report(report: SourcesReport) -> None:
    from rich.table import Table

    days = (report.until - report.since).total_seconds() / 86400
    table = Table(
        title=f"sources over the {days:g} days to {report.until:%Y-%m-%d %H:%M} UTC "
        f"(hot: {report.min_sources}+ sources)",
        title_justify="left",
    )
    for header in (
        "source",
        "verdict",
        "weight",
        "articles",
        "hot",
        "only it",
        "repeats",
        "first",
        "delay",
    ):
        table.add_column(header, justify="left" if header in {"source", "verdict"} else "right")
    table.add_column("state")
    table.add_column("why", overflow="fold")
    for line in report.sources:
        delay = "-" if line.median_delay_hours is None else f"{line.median_delay_hours:.1f} h"
        table.add_row(
            line.id,
            line.verdict,
            f"{line.weight:g}",
            str(line.articles),
            str(line.hot),
            str(line.exclusive),
            str(line.repeats),
            f"{line.first}/{line.shared}",
            delay,
            line.state,
            line.why,
        )
    console().print(table)


def sources_report_json(report: SourcesReport) -> dict[str, object]:
    from dataclasses import asdict

    from aggregator.times import iso

    return {
        "since": iso(report.since),
        "until": iso(report.until),
        "min_sources": report.min_sources,
        "sources": [asdict(line) for line in report.sources],
    }
