"""`aggregator db ...`: the database's upkeep: upgrade and current (schema migrations), prune
(retention), vacuum, backup."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    Shared,
    Subparsers,
    add_command,
    config_from,
    now_from,
    open_database,
)
from aggregator.errors import UserError

if TYPE_CHECKING:
    from aggregator.sources.load import Config
    from aggregator.store import Storage


def _as_is(args: argparse.Namespace, config: Config) -> Storage:
    """The database opened without looking at its schema (no upgrade, no refusal)."""
    from aggregator.store import Storage

    timeout = config.settings.db_busy_timeout_seconds
    return Storage(config.database_url(args.db), busy_timeout=timeout, schema="as-is")


def _name(storage: Storage) -> str:
    return storage.engine.url.render_as_string(hide_password=True)


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def cmd_upgrade(args: argparse.Namespace) -> int:
    from aggregator.pipeline import run_lock
    from aggregator.store.migrate import upgrade, version

    config = config_from(args)
    with _as_is(args, config) as storage, run_lock(config, storage):
        before = version(storage.engine)
        applied = upgrade(storage.engine)
    if not applied:
        print(f"{_name(storage)}: already at the newest schema, {before.head}")
    else:
        print(
            f"{_name(storage)}: upgraded from {before.label} to {before.head} "
            f"(applied {', '.join(applied)})"
        )
    return EXIT_OK


def add_upgrade(sub: Subparsers, shared: Shared) -> None:
    add_command(
        sub,
        "upgrade",
        cmd_upgrade,
        "Bring the database's schema to this release's (every command does this on start "
        "unless settings.auto_migrate is false); a database made by release 0.1.0 is adopted "
        "with its rows.",
        "aggregator db backup before-upgrade.db && aggregator db upgrade",
        [shared.common],
    )


def cmd_current(args: argparse.Namespace) -> int:
    from aggregator.store.migrate import version

    config = config_from(args)
    with _as_is(args, config) as storage:
        found = version(storage.engine)
    print(f"{_name(storage)}: {found.describe()}")
    if not found.up_to_date and found.known:
        print("run `aggregator db upgrade` (or any command, with settings.auto_migrate true)")
    return EXIT_OK


def add_current(sub: Subparsers, shared: Shared) -> None:
    add_command(
        sub,
        "current",
        cmd_current,
        "Show the database's schema revision and whether it is this release's newest.",
        "aggregator db current --db postgresql+psycopg://news@127.0.0.1/news",
        [shared.common],
    )


def cmd_prune(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from aggregator.pipeline import run_lock
    from aggregator.settings import retention_problem

    config = config_from(args)
    settings = config.settings
    days = args.days if args.days is not None else settings.retention_days
    if days is None:
        print("retention_days is null: nothing is pruned (pass --days N to prune once)")
        return EXIT_OK
    problem = retention_problem(days, settings.window_hours, settings.story_continuation_hours)
    if problem:
        raise UserError(f"--days {days}: {problem}")
    before = now_from(args) - timedelta(days=days)
    with open_database(args, config) as storage, run_lock(config, storage):
        pruned = storage.prune(before)
    print(
        f"{pruned} articles older than {days} days ({before:%Y-%m-%d %H:%M} UTC) pruned: text, "
        "author and image dropped; links, titles and stories kept"
    )
    return EXIT_OK


def add_prune(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "prune",
        cmd_prune,
        "Drop the text of articles older than retention_days (30) now; runs and the schedule's "
        "digests do it after each digest. Stories keep their ids, titles and links.",
        "aggregator db prune\naggregator db prune --days 90 && aggregator db vacuum",
        [shared.common, shared.clock],
    )
    p.add_argument(
        "--days",
        type=int,
        metavar="N",
        help="prune articles older than N days (default: settings.retention_days)",
    )


def cmd_vacuum(args: argparse.Namespace) -> int:
    from aggregator.pipeline import run_lock

    config = config_from(args)
    with _as_is(args, config) as storage, run_lock(config, storage):
        before = storage.size()
        storage.vacuum()
        after = storage.size()
    print(f"{_name(storage)}: {_bytes(before)} -> {_bytes(after)}")
    return EXIT_OK


def add_vacuum(sub: Subparsers, shared: Shared) -> None:
    add_command(
        sub,
        "vacuum",
        cmd_vacuum,
        "Give back the space pruned text took: SQLite VACUUM (rewrites the file; needs that "
        "much free disk), PostgreSQL VACUUM ANALYZE.",
        "aggregator db prune && aggregator db vacuum",
        [shared.common],
    )


def cmd_backup(args: argparse.Namespace) -> int:
    config = config_from(args)
    with _as_is(args, config) as storage:
        if not storage.is_sqlite:
            print(_pg_dump_advice(storage), file=sys.stderr)
            return EXIT_USAGE
        size = storage.backup(Path(args.file))
        source = storage.sqlite_path()
    print(f"{source} backed up to {Path(args.file)} ({_bytes(size)}, integrity check ok)")
    return EXIT_OK


def _pg_dump_advice(storage: Storage) -> str:
    from sqlalchemy.engine import URL

    url = storage.engine.url  # without the driver (pg_dump's form) and without the password
    plain = URL.create("postgresql", url.username, None, url.host, url.port, url.database)
    where = plain.render_as_string(hide_password=False)
    return (
        "error: `aggregator db backup` copies SQLite databases; back PostgreSQL up with its own "
        "tool, which takes a consistent snapshot while the service runs:\n"
        f"  pg_dump --format=custom --file=news.dump '{where}'\n"
        f"restore into an empty database with:\n"
        f"  pg_restore --no-owner --dbname='{where}' news.dump\n"
        "(the password comes from PGPASSWORD or ~/.pgpass)"
    )


def add_backup(sub: Subparsers, shared: Shared) -> None:
    p = add_command(
        sub,
        "backup",
        cmd_backup,
        "Copy the SQLite database to FILE while the service keeps running (SQLite's online "
        "backup, checked, renamed into place); for PostgreSQL it says how to use pg_dump.",
        "aggregator db backup /var/backups/aggregator-$(date +%F).db",
        [shared.common],
    )
    p.add_argument("file", metavar="FILE", help="the copy to write (replaced if it exists)")


def add_db(sub: Subparsers, shared: Shared) -> None:
    """The ``db`` command and its actions."""
    summary = "Look after the database: schema upgrades, retention, vacuum, backups."
    db = sub.add_parser(
        "db",
        help=summary,
        description=summary,
        epilog="Example:\n  aggregator db current\n  aggregator db backup news-backup.db",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    for add in (add_upgrade, add_current, add_prune, add_vacuum, add_backup):
        add(actions, shared)


COMMANDS = (add_db,)
