"""Whole cycles: ``demo`` (offline, on the bundled outlets), ``run`` (once) and ``schedule``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator.cli.common import (
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_PARTIAL,
    Shared,
    Subparsers,
    add_command,
    config_from,
    now_from,
    open_database,
    window_from,
)
from aggregator.errors import UserError

if TYPE_CHECKING:
    from datetime import datetime


def cmd_demo(args: argparse.Namespace) -> int:
    from aggregator.cli.output import print_run
    from aggregator.demo.run import run_demo

    report = run_demo(
        Path(args.out).absolute(),  # not resolve(): that would follow the site's link
        args.db,
        serving=lambda url: print(f"Serving the demo outlets on {url} (127.0.0.1 only)"),
    )
    print_run(report, problems=args.log_format != "json")
    print(f"\nThe demo site is at {report.render.path / 'index.html'}")
    return EXIT_OK


def add_demo(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "demo",
        cmd_demo,
        "Run the whole pipeline offline on the bundled demo outlets and write the site.",
        "aggregator demo --out site",
        [shared.common],
    )
    p.add_argument("--out", default="site", metavar="DIR", help="where to write the site")


def cmd_run(args: argparse.Namespace) -> int:
    from aggregator.workers import prestart

    if not args.no_crawl:
        prestart()  # the parse workers' imports run beside this process's own
    from aggregator.cli.output import print_run
    from aggregator.pipeline import output_dir, run_once

    config = config_from(args, required=True, crawls=not args.no_crawl)
    with open_database(args, config) as storage:
        report = run_once(
            config,
            storage,
            now=now_from(args),
            window=window_from(args, config),
            out_dir=output_dir(config, args.out),
            do_crawl=not args.no_crawl,
        )
    print_run(report, problems=args.log_format != "json")
    return EXIT_PARTIAL if report.crawl is not None and report.crawl.all_failed else EXIT_OK


def add_run(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "run",
        cmd_run,
        "One full cycle: crawl the sources, cluster, summarise and render the site.",
        "aggregator run --config sources.yaml --db postgresql+psycopg://user@host/news\n"
        "aggregator run --no-crawl --window all   # re-digest everything stored",
        [shared.common, shared.window],
    )
    p.add_argument("--out", metavar="DIR", help="site directory (default: output_dir)")
    p.add_argument("--no-crawl", action="store_true", help="skip the crawl (digest only)")


def cmd_schedule(args: argparse.Namespace) -> int:
    import logging

    from aggregator.pipeline import output_dir
    from aggregator.schedule import Cycle, build_scheduler, next_digest, run_first, run_forever
    from aggregator.times import utcnow

    if args.now and not args.once:
        raise UserError("--now pins the clock of --once only; the daemon keeps the real time")
    config = config_from(args, required=True, crawls=True)
    logging.getLogger("aggregator.schedule").setLevel(logging.INFO)  # one line per job
    s = config.settings
    digest_when = (
        f"every {s.digest_interval_minutes:g} min"
        if s.digest_interval_minutes is not None
        else f"at '{s.digest_cron}' ({s.timezone})"
    )
    clock = (lambda: args.now) if args.now else utcnow
    with open_database(args, config) as storage:
        cycle = Cycle(config, storage, output_dir(config, args.out), clock=clock)
        if args.once:
            outcomes = run_first(cycle)
            now = cycle.clock()
            for job, outcome in outcomes.items():
                print(f"{job}: {outcome}")
            if "crawl" not in outcomes:
                print("crawl: no source due")
            print(f"next crawl: {_at(cycle.next_crawl, 'UTC')} (when the earliest source is due)")
            print(f"next digest: {_at(next_digest(s, now), s.timezone)} ({digest_when})")
            if "locked" in outcomes.values():
                return EXIT_LOCKED
            return EXIT_PARTIAL if "failed" in outcomes.values() else EXIT_OK
        scheduler = build_scheduler(cycle)
        print(
            f"Crawling each source when it is due (waking every {s.crawl_min_wait_minutes:g} "
            f"to {s.crawl_max_wait_minutes:g} min), digest {digest_when} and now; "
            "SIGTERM or Ctrl-C stops after the current stage.",
            flush=True,
        )
        run_forever(cycle, scheduler)
    return EXIT_OK


def _at(moment: datetime | None, zone: str) -> str:
    """'2026-12-04 06:30:00 CET' in time zone ``zone``."""
    import zoneinfo

    if moment is None:
        return "never"
    return moment.astimezone(zoneinfo.ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def add_schedule(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "schedule",
        cmd_schedule,
        "Run until stopped: crawl each source when it is due, digest at the times of "
        "digest_cron; one run at a time; SIGTERM finishes the current stage and exits 0.",
        "aggregator schedule --config /etc/aggregator/sources.yaml\n"
        "aggregator schedule --once   # the first round (due crawl, digest), then exit",
        [shared.common, shared.clock],
    )
    p.add_argument("--out", metavar="DIR", help="site directory (default: output_dir)")
    p.add_argument(
        "--once",
        action="store_true",
        help="run what the daemon runs when it starts (the crawl when a source is due, the "
        "digest), print when each job would run next, and exit (for dry runs and tests)",
    )


COMMANDS = (add_demo, add_run, add_schedule)
