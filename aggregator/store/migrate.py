"""Schema migrations: Alembic run from code, with the scripts shipped inside the package
(``store/migrations/``), so an installed wheel upgrades its database without an alembic.ini.

Opening a Storage brings the schema to the newest revision (``settings.auto_migrate``) or, when
that is forbidden, refuses a database that is not there yet. Upgrades are serialised: two
processes opening one new database at once create it once (SQLite: ``BEGIN IMMEDIATE``;
PostgreSQL: a transaction-scoped advisory lock), and each upgrade is one transaction, so a failed
or killed upgrade leaves the schema as it was.

A database already at the newest revision costs one small query and no Alembic import (60 ms
of every command's start): each migration file is named after its revision id, numbered in
order, so the newest is the last file name (tests/test_migrations.py holds the convention).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import Engine

from aggregator.errors import StorageError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
# PostgreSQL advisory lock key held while migrating ("aggregator schema" as a number).
MIGRATION_LOCK = 0x616767_736368


@dataclass(frozen=True)
class SchemaVersion:
    """Where a database's schema stands against this release's migrations."""

    current: str | None  # the revision the database is at; None: not versioned yet
    head: str  # the newest revision this release knows
    has_tables: bool  # tables exist (a database made before migrations has no version)
    known: bool  # ``current`` is one of this release's revisions (else a newer release's)

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def label(self) -> str:
        """The revision, or what an unversioned database is."""
        if self.current is not None:
            return self.current
        return "release 0.1.0 (before migrations)" if self.has_tables else "empty"

    def describe(self) -> str:
        if self.up_to_date:
            return f"{self.label} (the newest schema)"
        if not self.known:
            return f"{self.label}, unknown to this release: a newer release made it"
        return f"{self.label} (the newest schema is {self.head})"


@functools.cache
def head() -> str:
    """The newest revision this release knows: the last migration file's name."""
    names = [p.stem for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")]
    assert names, f"no migration scripts in {MIGRATIONS}"
    return max(names)


def alembic_config() -> Config:
    """The Alembic configuration of the shipped scripts (no file needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    return config


@functools.cache
def scripts() -> ScriptDirectory:
    """The migration scripts, read once per process."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def version(engine: Engine) -> SchemaVersion:
    with engine.connect() as conn:
        return _version(conn)


def _version(conn: Connection) -> SchemaVersion:
    current, newest = _current(conn), head()
    has_tables = any(name != "alembic_version" for name in inspect(conn).get_table_names())
    known = current in (None, newest) or _known(current)
    return SchemaVersion(current=current, head=newest, has_tables=has_tables, known=known)


def _current(conn: Connection) -> str | None:
    """The revision recorded in the database (Alembic's version table), None if none."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _known(revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return scripts().get_revision(revision) is not None
    except CommandError:
        return False


def upgrade(engine: Engine) -> list[str]:
    """Bring the schema to the newest revision; the revisions applied, oldest first."""
    with engine.connect() as conn:
        if _current(conn) == head():
            return []  # the common case: one small query
    from alembic import command

    with engine.connect() as conn:
        _lock(conn)
        before = _version(conn)  # again, under the lock: another process may have upgraded
        _refuse_unknown(before)
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()
    return _between(before.current, before.head)


def require_current(engine: Engine) -> None:
    """Refuse a database whose schema is not the newest (automatic upgrades forbidden)."""
    found = version(engine)
    _refuse_unknown(found)
    if not found.up_to_date:
        raise StorageError(
            f"the database schema is {found.describe()} and settings.auto_migrate is false: "
            "back it up (aggregator db backup FILE), then run `aggregator db upgrade`"
        )


def _refuse_unknown(found: SchemaVersion) -> None:
    if not found.known:
        raise StorageError(
            f"the database schema is at revision {found.current}, which this release does not "
            f"know (its newest is {found.head}): a newer release of aggregator upgraded it; "
            "install that release again"
        )


def _lock(conn: Connection) -> None:
    """Begin the upgrade's transaction holding the lock that keeps other upgrades out."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # waits for the busy timeout, then fails
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def _between(old: str | None, new: str) -> list[str]:
    """Revisions after ``old`` up to ``new``, oldest first."""
    walked = scripts().iterate_revisions(new, old)  # newest first
    return [rev.revision for rev in reversed(list(walked))]
