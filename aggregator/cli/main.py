"""The entry point: the parser made of every command group's commands, and error handling.

Each command group module (``run``, ``stages``, ``crawl``, ``data``, ``ask``, ``sources``, ``db``)
declares its commands' options beside their handlers and lists them in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from aggregator import __version__, logs
from aggregator.cli import ask, crawl, data, db, run, serve, sources, stages
from aggregator.cli.common import (
    EXIT_IOERR,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_SOFTWARE,
    EXIT_USAGE,
    add_log_format,
    shared_options,
)
from aggregator.errors import (
    ConfigError,
    DatabaseBusyError,
    RunLockedError,
    SiteWriteError,
    UserError,
)

log = logging.getLogger("aggregator")

GROUPS = (run, crawl, stages, data, ask, serve, sources, db)  # the order of the commands in --help


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aggregator",
        description="A self-hosted, AI-curated news service: crawl the feeds in sources.yaml, "
        "group articles into stories, summarise each with cited sources, publish a static site.",
        epilog="Example:\n  aggregator demo            # the whole pipeline offline\n"
        "  aggregator run --config sources.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aggregator {__version__}")
    add_log_format(parser, default=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    shared = shared_options()
    for group in GROUPS:
        for add in group.COMMANDS:
            add(sub, shared)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_format = args.log_format or os.environ.get("AGGREGATOR_LOG_FORMAT", "").strip() or "text"
    log_format = log_format if log_format in logs.FORMATS else "text"
    args.log_format = log_format  # the commands that print problem lines ask
    logs.configure(log_format, args.verbose)
    # crawl and run print one line per problem source; as text, its log line would repeat it
    # (the daemon prints no such lines, and JSON lines are for machines: both keep the log)
    quiet = not args.verbose and log_format == "text" and args.command != "schedule"
    logging.getLogger("aggregator.crawl").setLevel(logging.ERROR if quiet else logging.NOTSET)
    try:
        return int(args.handler(args))
    except UserError as exc:
        for problem in exc.problems if isinstance(exc, ConfigError) else [str(exc)]:
            if log_format == "json":
                log.error(problem)
            else:
                print(f"error: {problem}", file=sys.stderr)
        if isinstance(exc, SiteWriteError):
            return EXIT_IOERR
        return EXIT_LOCKED if isinstance(exc, (RunLockedError, DatabaseBusyError)) else EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception:
        log.critical("unexpected error: a bug; please report it with this traceback", exc_info=True)
        return EXIT_SOFTWARE


if __name__ == "__main__":
    sys.exit(main())
