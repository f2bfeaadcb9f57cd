"""The entry point: the parser made of every command group's commands, and error handling.

Each command group module (``run``, ``stages``, ``crawl``, ``data``, ``sources``, ``db``)
declares its commands' options beside their handlers and lists them in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from aggregator import __version__
from aggregator.cli import crawl, data, db, run, sources, stages
from aggregator.cli.common import EXIT_OK, EXIT_USAGE, shared_options
from aggregator.errors import ConfigError, UserError

GROUPS = (run, crawl, stages, data, sources, db)  # the order of the commands in --help


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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    shared = shared_options()
    for group in GROUPS:
        for add in group.COMMANDS:
            add(sub, shared)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # the crawl summary prints one line per problem source; its log line would repeat it
        logging.getLogger("aggregator.crawl").setLevel(logging.ERROR)
    try:
        return int(args.handler(args))
    except UserError as exc:
        for problem in exc.problems if isinstance(exc, ConfigError) else [str(exc)]:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
