"""The crawl and the sources' health: ``crawl`` and ``status``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from aggregator.cli.common import (
    EXIT_OK,
    EXIT_PARTIAL,
    Shared,
    Subparsers,
    add_command,
    config_from,
    now_from,
    open_database,
)
from aggregator.errors import UserError

if TYPE_CHECKING:
    from datetime import datetime

    from aggregator.crawl.crawl import CrawlReport
    from aggregator.sources.load import Config
    from aggregator.store import Storage


def cmd_crawl(args: argparse.Namespace) -> int:
    from aggregator.workers import prestart

    prestart()  # the parse workers' imports run beside this process's own
    from aggregator.cli.output import print_crawl
    from aggregator.crawl.crawl import crawl
    from aggregator.pipeline import run_lock

    config = config_from(args, required=True, crawls=True)
    now = now_from(args)
    with open_database(args, config) as storage, run_lock(config, storage):
        if sys.stdout.isatty():
            report = _crawl_with_progress(config, storage, now, force=args.force)
        else:
            report = crawl(config, storage, now=now, force=args.force)
    print_crawl(report, problems=args.log_format != "json")
    return EXIT_PARTIAL if report.all_failed else EXIT_OK


def _crawl_with_progress(
    config: Config, storage: Storage, now: datetime, *, force: bool
) -> CrawlReport:
    """The crawl with a progress bar (only when stdout is a terminal)."""
    from rich.progress import Progress

    from aggregator.crawl.crawl import crawl

    with Progress(transient=True) as bar:
        task = bar.add_task("crawling", total=len(config.enabled_sources))
        return crawl(config, storage, now=now, force=force, progress=lambda _id: bar.advance(task))


def add_crawl(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "crawl",
        cmd_crawl,
        "Fetch every enabled source that is due and store new articles.",
        "aggregator crawl --config sources.yaml\n"
        "aggregator crawl --force     # fetch sources that are not due yet too",
        [shared.common, shared.clock],
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="ignore due times (interval, backoff, Retry-After); gone sources and robots.txt "
        "still apply",
    )


RUNS_SHOWN = 5  # the last runs `status` shows beside the sources


def cmd_status(args: argparse.Namespace) -> int:
    if args.healthcheck:
        return _healthcheck(args)
    from aggregator.cli.output import print_runs, print_status, print_usage, status_json
    from aggregator.crawl.status import clear_health, status_report
    from aggregator.summarise.ledger import local_day, report_since, usage_report

    config = config_from(args, required=True)
    now = now_from(args)
    with open_database(args, config) as storage:
        if args.clear:
            clear_health(config, storage, args.clear)
            for source_id in args.clear:
                print(f"{source_id}: failures, waits and the gone flag cleared", file=sys.stderr)
        rows = status_report(config, storage, now)
        runs = storage.last_runs(RUNS_SHOWN)
        zone = config.settings.timezone
        ledger = storage.llm_usage(report_since(now, zone), local_day(now, zone))
    llm = config.settings.llm
    usage = usage_report(ledger, now, zone, llm.daily_budget_calls, llm.daily_budget_tokens)
    if args.json:
        print(json.dumps(status_json(rows, now, runs, usage), ensure_ascii=False, indent=2))
    else:
        print_status(rows, now)
        print_runs(runs, now)
        print_usage(usage)
    return EXIT_OK


def _healthcheck(args: argparse.Namespace) -> int:
    """Read the health file only (no database): 0 when every job succeeded recently enough."""
    from datetime import timedelta

    from aggregator.healthfile import check_health, health_path

    config = config_from(args)
    path = health_path(config)
    if path is None:
        raise UserError(
            "no health file to check: set health_file in sources.yaml's settings (or "
            "AGGREGATOR_HEALTH_FILE), so that runs write one"
        )
    verdict = check_health(path, now_from(args), timedelta(hours=args.max_age))
    for line in verdict.lines:
        print(line)
    return EXIT_OK if verdict.healthy else EXIT_PARTIAL


def _hours(value: str) -> float:
    try:
        hours = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of hours") from None
    if hours <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 hours")
    return hours


def add_status(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "status",
        cmd_status,
        "Show every source's health: state, last success and error, failures, next fetch; "
        "the last runs; LLM usage today and over the last 7 days.",
        "aggregator status --config sources.yaml\n"
        "aggregator status --json | jq '.sources[] | select(.state != \"ok\")'\n"
        "aggregator status --clear bbc-world   # fetch a gone or backing-off source again\n"
        "aggregator status --healthcheck --max-age 3   # exit 1 when no run succeeded for 3 h",
        [shared.common, shared.clock],
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--clear",
        action="append",
        metavar="SOURCE_ID",
        help="forget a source's failures, waits and gone flag first (repeatable)",
    )
    p.add_argument(
        "--healthcheck",
        action="store_true",
        help="only read the health file (settings.health_file): exit 0 when the crawl and the "
        "digest last succeeded within --max-age hours, else 1 (for monitors, Docker, systemd)",
    )
    p.add_argument(
        "--max-age",
        type=_hours,
        default=2.0,
        metavar="HOURS",
        help="with --healthcheck: the oldest last success that is still healthy (default: 2)",
    )


COMMANDS = (add_crawl, add_status)
