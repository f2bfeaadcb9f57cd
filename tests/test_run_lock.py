"""One run at a time across processes and machines: the data directory's file lock, and on
PostgreSQL an advisory lock that also holds between data directories (machines) sharing the
database. A second run exits 75 and writes nothing; a killed run's locks never block the next.
Real processes, a real PostgreSQL server."""

from __future__ import annotations

import signal
from pathlib import Path

import psycopg
import pytest

from aggregator.errors import RunLockedError
from aggregator.pipeline import run_lock
from aggregator.sources.load import load_config
from aggregator.store.storage import Storage
from tests.conftest import PG_ADMIN_URL
from tests.support.loopback import LoopbackServer
from tests.support.processes import HeldFeed, aggregator, feed_xml, wait_for, write_config


def _advisory_locks(database_url: str) -> int:
    """Advisory locks held in that PostgreSQL database, by any session."""
    name = database_url.rsplit("/", 1)[1]
    dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = %s",
            (name,),
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.postgres
def test_the_advisory_lock_refuses_a_second_data_directory(tmp_path: Path, pg_url: str) -> None:
    configs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        configs.append(load_config(write_config(tmp_path / name / "sources.yaml", {})))
    with Storage(pg_url) as first, Storage(pg_url) as second:
        with run_lock(configs[0], first):
            assert _advisory_locks(pg_url) == 1
            # another data directory: its file lock is free, the database's lock is not
            refused = pytest.raises(RunLockedError, match="run lock of PostgreSQL database")
            with refused, run_lock(configs[1], second):
                pass
            # the file lock the refused run took is released again
            with run_lock(configs[1]):
                pass
        assert _advisory_locks(pg_url) == 0
        with run_lock(configs[1], second):  # free once the first is done
            pass


@pytest.mark.postgres
def test_two_runs_from_two_data_dirs_on_one_database_one_is_refused(
    tmp_path: Path, pg_url: str
) -> None:
    with LoopbackServer() as srv:
        held = HeldFeed(feed_xml("wire", srv.url("/")))
        srv.routes["/wire.xml"] = held
        folders = [tmp_path / "a", tmp_path / "b"]
        configs = []
        for folder in folders:
            folder.mkdir()
            configs.append(
                write_config(
                    folder / "sources.yaml",
                    {"wire": srv.url("/wire.xml")},
                    "health_file: health.json",
                )
            )
        first = aggregator(["run", "--config", str(configs[0]), "--db", pg_url], folders[0])
        try:
            wait_for(held.entered.is_set, "the first run to ask for the feed")
            for command in (["run"], ["schedule", "--once"], ["crawl"], ["render"]):
                second = aggregator(
                    [*command, "--config", str(configs[1]), "--db", pg_url], folders[1]
                )
                assert second.wait() == 75, (command, second.stderr)
                assert "another aggregator run holds the run lock of PostgreSQL database" in (
                    second.stderr
                ), command
            held.release.set()
            assert first.wait() == 0, first.stderr
        finally:
            held.release.set()
            first.stop()
        # the refused runs fetched nothing and wrote nothing: no site, no health file
        assert [r.path for r in srv.requests] == ["/wire.xml"]
        assert not (folders[1] / "site").exists() and not (folders[1] / "health.json").exists()
        assert (folders[0] / "site" / "index.html").exists()
        # the first is done: the second data directory runs now
        again = aggregator(["run", "--config", str(configs[1]), "--db", pg_url], folders[1])
        assert again.wait() == 0, again.stderr
    assert (folders[1] / "site" / "index.html").exists()


def test_a_sigkilled_run_leaves_no_lock_that_blocks_the_next(tmp_path: Path, db_url: str) -> None:
    with LoopbackServer() as srv:
        held = HeldFeed(feed_xml("wire", srv.url("/")))
        srv.routes["/wire.xml"] = held
        cfg = write_config(tmp_path / "sources.yaml", {"wire": srv.url("/wire.xml")})
        killed = aggregator(["run", "--config", str(cfg), "--db", db_url], tmp_path)
        try:
            wait_for(held.entered.is_set, "the run to ask for the feed")
            if db_url.startswith("postgresql"):
                assert _advisory_locks(db_url) == 1
            killed.popen.send_signal(signal.SIGKILL)
            assert killed.wait() == -signal.SIGKILL
        finally:
            killed.stop()
        # the lock file is still there and names the dead process...
        lock = tmp_path / "data" / "aggregator.lock"
        assert lock.read_text() == str(killed.popen.pid)
        held.release.set()
        # ...yet the next run takes both locks and completes
        following = aggregator(["run", "--config", str(cfg), "--db", db_url], tmp_path)
        assert following.wait() == 0, following.stderr
    assert (tmp_path / "site" / "index.html").exists()
    with Storage(db_url) as storage:
        assert storage.count_articles() == 2
