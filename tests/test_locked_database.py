"""Another process holds a write transaction on the SQLite file: a run waits up to
settings.db_busy_timeout_seconds, then fails with a message that says so, having committed
nothing; once the other writer is done the same run succeeds. Real processes, real files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.support.loopback import LoopbackServer, Response
from tests.support.processes import aggregator, feed_xml, write_config

HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")  # the write lock, held until stdin closes
conn.execute("UPDATE source_state SET etag = etag")
print("held", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("article", "source_state", "story", "run")
        }


def test_a_run_waits_for_a_locked_database_then_fails_cleanly(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        srv.routes["/wire.xml"] = Response(body=feed_xml("wire", srv.url("/"), items=5))
        config = write_config(
            tmp_path / "sources.yaml",
            {"wire": srv.url("/wire.xml")},
            "db_busy_timeout_seconds: 2",
        )
        db = tmp_path / "news.db"
        url = f"sqlite:///{db}"
        made = aggregator(["db", "upgrade", "--config", str(config), "--db", url], tmp_path)
        assert made.wait() == 0, made.stderr
        before = counts(db)
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            started = time.monotonic()
            locked = aggregator(["run", "--config", str(config), "--db", url], tmp_path)
            code = locked.wait()
            waited = time.monotonic() - started
        finally:
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(timeout=30)
        message = locked.stderr
        assert code == 75, message  # try again later
        assert "locked" in message and "db_busy_timeout_seconds" in message, message
        assert "Traceback" not in message
        assert waited >= 2, waited  # it waited for the other writer first
        assert counts(db) == before  # nothing of the failed run was committed
        again = aggregator(["run", "--config", str(config), "--db", url], tmp_path)
        assert again.wait() == 0, again.stderr
        after = counts(db)
        assert after["article"] == 5 and after["run"] == before["run"] + 1, after
