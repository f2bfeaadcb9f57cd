"""What every command shares: exit codes, the --config/--db and window options, opening the
config and the database, and registering a command with its help and example."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator.errors import UserError
from aggregator.pipeline import (
    Window,
    open_storage,
)
from aggregator.settings import DEFAULT_CONFIG
from aggregator.sources.load import Config, load_config
from aggregator.store import Storage
from aggregator.times import utcnow

if TYPE_CHECKING:
    from rich.console import Console


EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2


# -- shared options ------------------------------------------------------------------------------


def parse_window(value: str) -> float | None:
    if value.strip().lower() == "all":
        return None
    try:
        hours = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of hours or 'all'") from None
    if hours <= 0:
        raise argparse.ArgumentTypeError("the window must be more than 0 hours")
    return hours


def parse_now(value: str) -> datetime:
    from aggregator.times import parse_iso

    try:
        return parse_iso(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None


def common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        help=f"the sources file (default: $AGGREGATOR_CONFIG or ./{DEFAULT_CONFIG})",
    )
    common.add_argument(
        "--db",
        metavar="URL",
        help="SQLAlchemy database URL (default: $AGGREGATOR_DB_URL or a SQLite file in data_dir)",
    )
    common.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    return common


def window_options() -> argparse.ArgumentParser:
    windowed = argparse.ArgumentParser(add_help=False)
    windowed.add_argument(
        "--window",
        type=parse_window,
        default=argparse.SUPPRESS,
        metavar="HOURS|all",
        help="look at articles of the last HOURS hours (default: window_hours, 24) or 'all'",
    )
    windowed.add_argument(
        "--now",
        type=parse_now,
        default=None,
        metavar="ISO8601",
        help="pin the clock, e.g. 2026-11-26T08:00:00Z (default: the current time)",
    )
    return windowed


def config_from(args: argparse.Namespace, *, required: bool = False) -> Config:
    """Load --config / $AGGREGATOR_CONFIG / ./sources.yaml; built-in defaults if absent."""
    path = args.config or os.environ.get("AGGREGATOR_CONFIG")
    if path is None and Path(DEFAULT_CONFIG).exists():
        path = DEFAULT_CONFIG
    if path is None:
        if required:
            raise UserError(
                f"no sources file: pass --config FILE or create ./{DEFAULT_CONFIG} "
                "(the README shows its format)"
            )
        return load_config(None)
    return load_config(path)


def window_hours(args: argparse.Namespace, config: Config) -> float | None:
    return getattr(args, "window", config.settings.window_hours)


def window_from(args: argparse.Namespace, config: Config) -> Window:
    return Window.last(args.now or utcnow(), window_hours(args, config))


def open_database(args: argparse.Namespace, config: Config) -> Storage:
    return open_storage(config, args.db)


def console() -> Console:
    """Rich output on stdout; a wide page when piped, so lines are not folded at 80 columns."""
    from rich.console import Console

    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)


# -- parser ---------------------------------------------------------------------------------------

Handler = Callable[[argparse.Namespace], int]


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    summary: str,
    example: str,
    parents: Sequence[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog="Example:\n" + textwrap.indent(example.strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=list(parents),
    )
    parser.set_defaults(handler=handler)
    return parser
