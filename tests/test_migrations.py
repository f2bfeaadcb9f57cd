"""Schema migrations on SQLite and PostgreSQL: from an empty database, and from the database the
last release (0.1.0, which made its tables without migrations) left, kept as
tests/fixtures/storage/release-0.1.0.* (made by that release's own code: see make_release_db.py
there); automatic upgrade on and off; concurrent first opens; a failed upgrade; a schema newer
than the code."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

from aggregator.cli.main import main
from aggregator.errors import StorageError
from aggregator.records import Story
from aggregator.store import migrate
from aggregator.store.storage import Storage

FIXTURES = Path(__file__).parent / "fixtures" / "storage"
EXPECTED = json.loads((FIXTURES / "release-0.1.0.expected.json").read_text())
HEAD = "0007_summary_items"


def load_release_0_1_0(db_url: str) -> None:
    """Put release 0.1.0's database at ``db_url`` (an empty database)."""
    if db_url.startswith("sqlite"):
        shutil.copy(FIXTURES / "release-0.1.0.sqlite", db_url.removeprefix("sqlite:///"))
        return
    dsn = db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((FIXTURES / "release-0.1.0.postgres.sql").read_text())  # type: ignore[arg-type]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def read_back(storage: Storage) -> dict[str, Any]:
    """Every row through the public API, as make_release_db.py read it with release 0.1.0."""
    stories = storage.stories()
    summaries = storage.summaries(["s-live", "s-old"])
    return _jsonable(
        {
            "articles": [asdict(a) for a in storage.articles()],
            "stories": [asdict(s) for s in stories],
            "redirects": storage.redirects(s.id for s in stories),
            # items came later (0006): a summary of 0.1.0 reads back with none
            "summaries": {
                k: {f: v for f, v in asdict(s).items() if f != "items"}
                for k, s in sorted(summaries.items())
                if not s.items
            },
            "fetch_states": {k: asdict(v) for k, v in sorted(storage.fetch_states().items())},
        }
    )


def schema_differences(db_url: str) -> list[Any]:
    """What Alembic's autogenerate sees between the database and the models: [] when equal."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), SQLModel.metadata))
    finally:
        engine.dispose()


def tables(db_url: str) -> set[str]:
    engine = create_engine(db_url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_form_one_numbered_line_named_after_their_revisions() -> None:
    """One line, no branches (a second head would be an error to merge first); the file names
    are the revision ids, numbered in order, which is how migrate.head() finds the newest
    without importing Alembic."""
    chain = list(reversed(list(migrate.scripts().walk_revisions())))  # oldest first
    files = sorted((migrate.MIGRATIONS / "versions").glob("*.py"))
    assert [Path(r.path).name for r in chain] == [f.name for f in files]
    previous = None
    for number, script in enumerate(chain, 1):
        assert script.revision == Path(script.path).stem
        assert script.revision.startswith(f"{number:04d}_"), script.revision
        assert script.down_revision == previous
        previous = script.revision
    assert migrate.head() == migrate.scripts().get_current_head() == HEAD


def test_an_empty_database_gets_exactly_the_models_schema(db_url: str) -> None:
    with Storage(db_url) as storage:
        found = migrate.version(storage.engine)
        assert (found.current, found.head, found.up_to_date) == (HEAD, HEAD, True)
        assert migrate.upgrade(storage.engine) == []  # nothing left to do
        assert storage.count_articles() == 0
    assert schema_differences(db_url) == []


def test_the_release_0_1_0_database_is_adopted_with_every_row(db_url: str) -> None:
    load_release_0_1_0(db_url)
    assert "alembic_version" not in tables(db_url)
    # the comparison sees what the release lacks (so the [] below means something)
    missing = schema_differences(db_url)
    assert ("add_column", None, "article") in [d[:3] for d in missing if isinstance(d, tuple)]
    assert any(d[0] == "add_index" and d[1].name == "ix_article_unpruned" for d in missing)

    with Storage(db_url, schema="as-is") as storage:
        before = migrate.version(storage.engine)
        assert (before.current, before.has_tables, before.label) == (
            None,
            True,
            "release 0.1.0 (before migrations)",
        )
        every = [f.stem for f in sorted((migrate.MIGRATIONS / "versions").glob("*.py"))]
        assert migrate.upgrade(storage.engine) == every and every[-1] == HEAD
    with Storage(db_url) as storage:
        assert read_back(storage) == EXPECTED
        assert migrate.version(storage.engine).up_to_date
        # and it goes on working: a story saved, an article pruned
        live = storage.stories()[0]
        storage.save_stories([Story(id="s-new", article_ids=live.article_ids[:1], title="New",
                                    first_seen=live.first_seen, updated=live.updated)])  # fmt: skip
        assert {s.id for s in storage.stories()} == {"s-live", "s-old", "s-new"}
    assert schema_differences(db_url) == []


def test_a_database_from_before_the_health_columns_gets_them(db_url: str) -> None:
    """Release 0.1.0's development added source_state columns; the baseline adds them too."""
    load_release_0_1_0(db_url)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        for column in ("url", "next_fetch", "gone_url", "feed_ttl", "last_http_status"):
            conn.execute(text(f"ALTER TABLE source_state DROP COLUMN {column}"))
    engine.dispose()
    with Storage(db_url) as storage:
        wire = storage.fetch_state("wire")
    assert (wire.etag, wire.articles_total, wire.url, wire.next_fetch) == ('"e1"', 3, None, None)
    assert schema_differences(db_url) == []


def _write_config(tmp_path: Path, auto_migrate: bool) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(
        f"settings:\n  auto_migrate: {str(auto_migrate).lower()}\n  data_dir: {tmp_path}/data\n"
    )
    return path


def test_with_auto_migrate_false_commands_refuse_until_db_upgrade(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load_release_0_1_0(db_url)
    config = str(_write_config(tmp_path, auto_migrate=False))
    export = ["export", "stories", "--window", "all", "--db", db_url, "--config", config]
    assert main(export) == 2
    err = capsys.readouterr().err
    assert "release 0.1.0 (before migrations)" in err and "aggregator db upgrade" in err
    assert "alembic_version" not in tables(db_url)  # refused without touching anything

    assert main(["db", "current", "--db", db_url, "--config", config]) == 0
    out = capsys.readouterr().out
    assert f"release 0.1.0 (before migrations) (the newest schema is {HEAD[:4]}" in out
    assert main(["db", "upgrade", "--db", db_url, "--config", config]) == 0
    out = capsys.readouterr().out
    assert f"upgraded from release 0.1.0 (before migrations) to {HEAD}" in out
    applied = ", ".join(f.stem for f in sorted((migrate.MIGRATIONS / "versions").glob("*.py")))
    assert f"(applied {applied})" in out
    assert main(["db", "upgrade", "--db", db_url, "--config", config]) == 0
    assert f"already at the newest schema, {HEAD}" in capsys.readouterr().out

    assert main(export) == 0
    stories = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [s["id"] for s in stories] == ["s-live", "s-old"]
    assert stories[0]["summary"] == "First. Second."


def test_with_auto_migrate_true_any_command_upgrades(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load_release_0_1_0(db_url)
    config = str(_write_config(tmp_path, auto_migrate=True))
    assert main(["export", "stories", "--window", "all", "--db", db_url, "--config", config]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["db", "current", "--db", db_url, "--config", config]) == 0
    assert f"{HEAD} (the newest schema)" in capsys.readouterr().out


def test_processes_opening_a_new_database_at_once_create_it_once(db_url: str) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            barrier.wait()
            Storage(db_url).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [(HEAD,)]
    engine.dispose()


def test_a_failed_upgrade_changes_nothing(db_url: str) -> None:
    """Each upgrade is one transaction: 0002 failing leaves the database as release 0.1.0 made it,
    0001's work undone too."""
    load_release_0_1_0(db_url)
    engine = create_engine(db_url)
    with engine.begin() as conn:  # the name 0002 gives its index, taken
        conn.execute(text("CREATE INDEX ix_article_unpruned ON story (title)"))
    engine.dispose()
    with pytest.raises(StorageError, match="ix_article_unpruned"):
        Storage(db_url)
    assert "alembic_version" not in tables(db_url)
    engine = create_engine(db_url)
    columns = {c["name"] for c in inspect(engine).get_columns("article")}
    engine.dispose()
    assert "pruned" not in columns


def test_a_schema_newer_than_this_release_is_refused(db_url: str) -> None:
    Storage(db_url).close()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    engine.dispose()
    for schema in ("upgrade", "require"):
        with pytest.raises(StorageError, match=r"0099_from_the_future.*newer release"):
            Storage(db_url, schema=schema)  # type: ignore[arg-type]
