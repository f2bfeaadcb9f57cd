"""What every command shares: exit codes, the --config/--db, window and clock options, opening
the config and the database, and registering a command with its help and example.

Nothing heavy is imported here or at the top of any command module: a command imports what it
uses when it runs, so ``aggregator --help`` never loads the clusterer, the crawler or a database
driver (tests/test_cli_imports.py holds that).
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from aggregator.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console

    from aggregator.pipeline import Window
    from aggregator.sources.load import Config
    from aggregator.store import Storage

# Exit codes cron, systemd and monitors can act on (README, "Exit codes"): 0 done; 1 done, but
# some of it failed (every source, some ingest lines, a stale health check); 2 fix something
# first (sources.yaml, the database, the arguments); 70 a bug (the traceback is logged); 74 the
# site could not be written, the previous one stays (EX_IOERR); 75 another run holds the lock
# or the database stayed locked: nothing was written, try again later (EX_TEMPFAIL).
EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_SOFTWARE, EXIT_LOCKED = 0, 1, 2, 70, 75
EXIT_IOERR = 74
DEFAULT_CONFIG = "sources.yaml"  # looked for in the working directory without --config

Handler = Callable[[argparse.Namespace], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


# -- option values -------------------------------------------------------------------------------


def parse_window(value: str) -> float | None:
    """--window: a number of hours, or "all" (None: every article ever stored)."""
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


# -- shared option groups ------------------------------------------------------------------------


@dataclass(frozen=True)
class Shared:
    """The option groups commands take as argparse parents."""

    common: argparse.ArgumentParser  # --config, --db, -v
    clock: argparse.ArgumentParser  # --now
    window: argparse.ArgumentParser  # --window and --now


def shared_options() -> Shared:
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
    add_log_format(common, default=argparse.SUPPRESS)
    clock = argparse.ArgumentParser(add_help=False)
    clock.add_argument(
        "--now",
        type=parse_now,
        default=None,
        metavar="ISO8601",
        help="pin the clock, e.g. 2026-11-26T08:00:00Z (default: the current time)",
    )
    window = argparse.ArgumentParser(add_help=False, parents=[clock])
    window.add_argument(
        "--window",
        type=parse_window,
        default=argparse.SUPPRESS,
        metavar="HOURS|all",
        help="look at articles of the last HOURS hours (default: window_hours, 24) or 'all'",
    )
    return Shared(common=common, clock=clock, window=window)


def add_log_format(parser: argparse.ArgumentParser, *, default: str | None) -> None:
    """--log-format: before the command (``aggregator --log-format json run``) or after it."""
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=default,
        help="log lines on stderr as text or as JSON objects, one per line "
        "(default: $AGGREGATOR_LOG_FORMAT, else text)",
    )


def add_command(
    sub: Subparsers,
    name: str,
    handler: Handler,
    summary: str,
    example: str,
    parents: Sequence[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """A command with its one-line summary, an example in its help, and its handler."""
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


# -- what handlers share -------------------------------------------------------------------------


def config_path(args: argparse.Namespace) -> Path:
    """--config, else $AGGREGATOR_CONFIG, else ./sources.yaml (which may not exist yet)."""
    return Path(args.config or os.environ.get("AGGREGATOR_CONFIG") or DEFAULT_CONFIG)


def config_from(
    args: argparse.Namespace, *, required: bool = False, crawls: bool = False
) -> Config:
    """Load --config / $AGGREGATOR_CONFIG / ./sources.yaml; built-in defaults if absent.

    ``required``: a command that reads the sources refuses to run without the file; ``crawls``:
    a command that crawls also refuses a file that lists no source.
    """
    from aggregator.sources.load import load_config

    path = args.config or os.environ.get("AGGREGATOR_CONFIG")
    if path is None and Path(DEFAULT_CONFIG).exists():
        path = DEFAULT_CONFIG
    if path is None:
        if required or crawls:
            raise UserError(
                f"no sources file: pass --config FILE or create ./{DEFAULT_CONFIG} "
                "(the README shows its format)"
            )
        return load_config(None)
    return load_config(path, require_sources=crawls)


def now_from(args: argparse.Namespace) -> datetime:
    from aggregator.times import utcnow

    return args.now or utcnow()


def window_from(args: argparse.Namespace, config: Config) -> Window:
    """--window (hours or all) ending at --now; settings.window_hours when not given."""
    from aggregator.pipeline import Window

    hours = getattr(args, "window", config.settings.window_hours)
    return Window.last(now_from(args), hours)


def open_database(args: argparse.Namespace, config: Config) -> Storage:
    """--db / the configured database, its schema upgraded first (refused, if not current,
    when settings.auto_migrate is false)."""
    from aggregator.store import Storage

    url = config.database_url(args.db)
    return Storage(
        url,
        busy_timeout=config.settings.db_busy_timeout_seconds,
        schema="upgrade" if config.settings.auto_migrate else "require",
    )


@contextmanager
def stage_run(args: argparse.Namespace) -> Iterator[tuple[Config, Window, Storage]]:
    """The config, the window and the open database of a single stage, under the run lock."""
    from aggregator.pipeline import run_lock

    config = config_from(args)
    window = window_from(args, config)
    with open_database(args, config) as storage, run_lock(config, storage):
        yield config, window, storage


def console() -> Console:
    """Rich output on stdout; a wide page when piped, so lines are not folded at 80 columns."""
    from rich.console import Console

    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)
