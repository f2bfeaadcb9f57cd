"""Whole cycles: ``demo`` (offline, on the bundled outlets), ``run`` (once) and ``schedule``."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from aggregator.cli.common import (
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


def cmd_demo(args: argparse.Namespace) -> int:
    from aggregator.cli.output import print_run
    from aggregator.demo.run import run_demo

    report = run_demo(
        Path(args.out).resolve(),
        args.db,
        serving=lambda url: print(f"Serving the demo outlets on {url} (127.0.0.1 only)"),
    )
    print_run(report)
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
    print_run(report)
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
    from aggregator.pipeline import output_dir
    from aggregator.schedule import Cycle, build_scheduler

    config = config_from(args, required=True, crawls=True)
    with open_database(args, config) as storage:
        scheduler = build_scheduler(Cycle(config, storage, output_dir(config, args.out)))
        s = config.settings
        print(
            f"Crawling every {s.crawl_interval_minutes:g} min, digest every "
            f"{s.digest_interval_minutes:g} min; Ctrl-C stops."
        )
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            scheduler.start()
    return EXIT_OK


def add_schedule(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "schedule",
        cmd_schedule,
        "Run forever: crawl and digest on the intervals set in sources.yaml.",
        "aggregator schedule --config /etc/aggregator/sources.yaml",
        [shared.common],
    )
    p.add_argument("--out", metavar="DIR", help="site directory (default: output_dir)")


COMMANDS = (add_demo, add_run, add_schedule)
