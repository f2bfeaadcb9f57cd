"""`aggregator db backup`: a consistent, self-contained copy of the SQLite database taken while
other connections read and write it; PostgreSQL gets pg_dump advice and exit code 2."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.cli.main import main
from aggregator.errors import StorageError
from aggregator.records import Article, Story
from aggregator.store import migrate
from aggregator.store.storage import Storage
from aggregator.urls import article_id

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _articles(start: int, count: int) -> list[Article]:
    return [
        Article(
            id=article_id(f"https://a.example/{n}"),
            url=f"https://a.example/{n}",
            title=f"Title {n}",
            source_id="a",
            source_name="A",
            text=f"Text of article {n}. " * 50,
            fetched_at=NOW - timedelta(minutes=n),
        )
        for n in range(start, start + count)
    ]


def test_a_backup_is_a_consistent_copy_while_others_read_and_write(tmp_path: Path) -> None:
    source = tmp_path / "news.db"
    with Storage(f"sqlite:///{source}") as storage:
        storage.add_articles(_articles(0, 300))
        storage.save_stories([Story(id="s", article_ids=(article_id("https://a.example/1"),),
                                    title="S", first_seen=NOW, updated=NOW)])  # fmt: skip
        # another process: a reader in the middle of a transaction, and a writer with an
        # uncommitted change holding the write lock
        with (
            closing(sqlite3.connect(source, isolation_level=None)) as reader,
            closing(sqlite3.connect(source, isolation_level=None)) as writer,
        ):
            reader.execute("BEGIN")
            assert reader.execute("SELECT count(*) FROM article").fetchone() == (300,)
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("UPDATE article SET title = 'uncommitted'")
            writer.execute("DELETE FROM story")
            started = time.monotonic()
            size = storage.backup(tmp_path / "copy.db")
            assert time.monotonic() - started < 10  # nobody waited for the writer
            writer.execute("COMMIT")
            reader.execute("COMMIT")
        assert storage.stories() == []  # the source moved on...
    copy = tmp_path / "copy.db"
    assert size == copy.stat().st_size > 0
    assert not list(tmp_path.glob("copy.db-*")) and not list(tmp_path.glob(".copy.db*"))
    with closing(sqlite3.connect(copy)) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one file
    with Storage(f"sqlite:///{copy}", schema="require") as restored:  # ...the copy did not
        assert restored.count_articles() == 300
        assert {a.title for a in restored.articles()} == {f"Title {n}" for n in range(300)}
        assert [s.id for s in restored.stories()] == ["s"]
        assert migrate.version(restored.engine).up_to_date


def test_a_backup_taken_while_a_writer_commits_is_whole(tmp_path: Path) -> None:
    """Writes committed during the backup never leave the copy half of each."""
    source = tmp_path / "news.db"
    with Storage(f"sqlite:///{source}") as storage:
        storage.add_articles(_articles(0, 100))
        stop = threading.Event()

        def write() -> None:
            batch = 100
            with Storage(f"sqlite:///{source}") as other:
                while not stop.is_set():
                    other.add_articles(_articles(batch, 50))
                    batch += 50

        writer = threading.Thread(target=write)
        writer.start()
        try:
            deadline = time.monotonic() + 30
            while storage.count_articles() == 100 and time.monotonic() < deadline:
                time.sleep(0.01)  # the writer is under way
            for n in range(5):
                storage.backup(tmp_path / f"copy{n}.db")
        finally:
            stop.set()
            writer.join()
    counts = []
    for n in range(5):
        with Storage(f"sqlite:///{tmp_path / f'copy{n}.db'}", schema="require") as copy:
            counts.append(copy.count_articles())
    assert all((count - 100) % 50 == 0 for count in counts), counts  # whole batches only
    assert counts[0] > 100 and counts == sorted(counts), counts


def test_db_backup_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "news.db"
    with Storage(f"sqlite:///{db}") as storage:
        storage.add_articles(_articles(0, 10))
    target = tmp_path / "backup.db"
    target.write_text("an older backup")  # replaced
    assert main(["db", "backup", str(target), "--db", f"sqlite:///{db}"]) == 0
    assert f"{db} backed up to {target} (" in capsys.readouterr().out
    with Storage(f"sqlite:///{target}") as copy:
        assert copy.count_articles() == 10
    assert main(["db", "backup", str(db), "--db", f"sqlite:///{db}"]) == 2
    assert "is the database itself" in capsys.readouterr().err
    missing = tmp_path / "nowhere" / "x.db"
    assert main(["db", "backup", str(missing), "--db", f"sqlite:///{db}"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_db_backup_of_postgresql_gives_pg_dump_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+psycopg://news:s3cret@db.example:5433/news"  # never connected to
    assert main(["db", "backup", str(tmp_path / "x.dump"), "--db", url]) == 2
    err = capsys.readouterr().err
    assert (
        "pg_dump --format=custom --file=news.dump 'postgresql://news@db.example:5433/news'" in err
    )
    assert "pg_restore" in err and "s3cret" not in err
    assert not (tmp_path / "x.dump").exists()


def test_backup_refuses_what_is_not_a_sqlite_file() -> None:
    with Storage("sqlite://") as memory, pytest.raises(StorageError, match="not a SQLite"):
        memory.backup(Path("x.db"))
