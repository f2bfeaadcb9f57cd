"""The one Storage class: every SQL statement of the project lives here."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import delete, event, func, not_, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlmodel import col, create_engine

from aggregator.errors import DatabaseBusyError, StorageError
from aggregator.records import (
    Article,
    Edition,
    EditionStory,
    FetchRecord,
    FetchResult,
    FetchState,
    FetchStatus,
    LLMUsageLine,
    Score,
    Story,
    Summary,
    SummaryItem,
    SummaryItems,
    SummarySentence,
)
from aggregator.store import migrate
from aggregator.store.models import (
    ArticleRow,
    EditionStoryRow,
    LLMUsageRow,
    RunRow,
    SourceStateRow,
    StoryMemberRow,
    StoryRow,
    SummaryRow,
    VerdictRow,
)

_Row = TypeVar("_Row")
_CHUNK = 500  # ids per IN (...) clause: well under SQLite's and PostgreSQL's parameter limits
RUNS_KEPT = 1_000  # run records kept (a run an hour: six weeks)
_ROWS = 1_000  # rows per executemany of one prepared INSERT (bounds the driver's buffers)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _rows_in(s: Session, row: type[_Row], key: Any, keys: Iterable[str]) -> Iterator[_Row]:
    """The rows of ``row`` whose ``key`` column is one of ``keys`` (each asked once), one
    IN (...) query per chunk."""
    for chunk in _chunks(list(dict.fromkeys(keys))):
        yield from s.execute(select(row).where(col(key).in_(chunk))).scalars()


class Storage:
    """SQLite (WAL) by default; any SQLAlchemy URL, PostgreSQL tested.

    ``schema`` says what opening does with the database's schema: "upgrade" brings it to the
    newest migration (settings.auto_migrate), "require" refuses one that is not there yet, and
    "as-is" looks at nothing (``aggregator db current`` and ``db upgrade`` use it).
    """

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = 30.0,
        schema: Literal["upgrade", "require", "as-is"] = "upgrade",
    ):
        self.url = url
        self.busy_timeout = busy_timeout
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite and ":memory:" not in url and url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(
                parents=True, exist_ok=True
            )
        connect_args: dict[str, Any] = {}
        if self.is_sqlite:
            connect_args = {"timeout": busy_timeout, "check_same_thread": False}
        elif url.startswith("postgresql"):
            # a lock wait (a row another writer holds, the migrations' lock) ends as SQLite's does
            lock_ms = max(1, int(busy_timeout * 1000))
            connect_args = {
                "connect_timeout": max(1, int(busy_timeout)),
                "options": f"-c lock_timeout={lock_ms}",
            }
        try:
            self.engine: Engine = create_engine(url, connect_args=connect_args)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StorageError(f"cannot use database URL {self._safe_url()}: {exc}") from exc
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            if schema == "upgrade":
                migrate.upgrade(self.engine)
            elif schema == "require":
                migrate.require_current(self.engine)
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise StorageError(f"cannot open database {self._safe_url()}: {exc}") from exc
        except StorageError:
            self.engine.dispose()
            raise

    def _safe_url(self) -> str:
        """The URL without its password, for messages."""
        try:
            return self.engine.url.render_as_string(hide_password=True)
        except AttributeError:
            return self.url.split("@")[-1]

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except DBAPIError as exc:  # the database's own error: locked, gone, a table missing
                session.rollback()
                if isinstance(exc, OperationalError) and _busy(exc):
                    raise DatabaseBusyError(
                        f"database {self._safe_url()} is locked by another process: waited "
                        f"{self.busy_timeout:g} s (settings.db_busy_timeout_seconds); nothing "
                        "of this transaction was written, try again later"
                    ) from exc
                raise StorageError(
                    f"database error ({self._safe_url()}): {_first_line(exc)}"
                ) from exc
            except BaseException:
                session.rollback()
                raise

    # -- sources' fetch state -------------------------------------------------------------

    def fetch_state(self, source_id: str) -> FetchState:
        with self.session() as s:
            row = s.get(SourceStateRow, source_id)
            return _state(row) if row else FetchState(source_id=source_id)

    def fetch_states(self) -> dict[str, FetchState]:
        with self.session() as s:
            return {r.source_id: _state(r) for r in s.execute(select(SourceStateRow)).scalars()}

    def record_fetch(
        self,
        source_id: str,
        result: FetchResult,
        now: datetime,
        new_articles: int = 0,
        *,
        url: str | None = None,
        next_fetch: datetime | None = None,
        gone: bool = False,
        feed_ttl: float | None = None,
    ) -> None:
        """Remember validators and health after fetching a source (see FetchRecord)."""
        record = FetchRecord(source_id, result, now, new_articles, url, next_fetch, gone, feed_ttl)
        self.record_fetches([record])

    def record_fetches(self, records: Sequence[FetchRecord]) -> None:
        """Several sources' fetches in one transaction (the crawl writes them in batches)."""
        if records:
            with self.session() as s:
                self._record_fetches(s, records)

    def save_crawl(self, articles: Sequence[Article], records: Sequence[FetchRecord]) -> None:
        """New articles and the fetches that brought them, in one transaction: a crash leaves
        either both or neither, so a source's validators never claim articles not stored.

        Articles already stored (by id) are left as they are.
        """
        with self.session() as s:
            self._insert_articles(s, articles)
            self._record_fetches(s, records)

    def _record_fetches(self, s: Session, records: Sequence[FetchRecord]) -> None:
        ids = (r.source_id for r in records)  # one query loads them all into the session
        rows = {r.source_id: r for r in _rows_in(s, SourceStateRow, SourceStateRow.source_id, ids)}
        for record in records:
            row = rows.get(record.source_id)
            if row is None:
                row = rows[record.source_id] = SourceStateRow(source_id=record.source_id)
                s.add(row)
            _apply_fetch(row, record)

    def clear_source_health(self, source_id: str) -> bool:
        """Forget failures, waits and the gone flag: fetched on the next crawl. False if unknown."""
        with self.session() as s:
            row = s.get(SourceStateRow, source_id)
            if row is None:
                return False
            row.gone_url = None
            row.next_fetch = None
            row.consecutive_failures = 0
            s.add(row)
            return True

    def recent_article_counts(self, since: datetime) -> dict[str, int]:
        """Articles per source whose time (published, else fetched) is at or after ``since``."""
        stmt = (
            select(col(ArticleRow.source_id), func.count())
            .where(col(ArticleRow.ts) >= since)
            .group_by(col(ArticleRow.source_id))
        )
        with self.session() as s:
            return {source: int(n) for source, n in s.execute(stmt).all()}

    # -- articles ---------------------------------------------------------------------------

    def known_article_ids(self, ids: Iterable[str]) -> set[str]:
        with self.session() as s:
            return self._known(s, list(dict.fromkeys(ids)))

    def _known(self, s: Session, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are stored: primary-key lookups, whatever the planner believes."""
        if not ids:
            return set()
        if not self.is_sqlite:
            # On a table that grew since it was last analysed (a first crawl) PostgreSQL reads
            # the whole table for every batch of ids: 0.14 s a batch at 20,000 articles.
            s.execute(text("SET LOCAL enable_seqscan = off"))
        # The driver's own SQL: building a select per call cost more than the lookup itself
        # (1,000 lookups of 30 ids: 0.27-0.39 s that way, 0.10-0.14 s this way).
        conn = s.connection()
        found: set[str] = set()
        for chunk in _chunks(ids):
            if self.is_sqlite:
                sql = f"SELECT id FROM article WHERE id IN ({', '.join('?' * len(chunk))})"
                rows = conn.exec_driver_sql(sql, tuple(chunk))
            else:
                rows = conn.exec_driver_sql("SELECT id FROM article WHERE id = ANY(%s)", (chunk,))
            found.update(rows.scalars())
        return found

    def add_articles(self, articles: Iterable[Article]) -> list[Article]:
        """Insert articles not stored yet (by id); return those actually inserted.

        The ids are looked up first and the rest inserted with one prepared statement run for
        every row (far cheaper than compiling a multi-row INSERT ... RETURNING per batch). A
        writer racing this one between the two steps would make the return value claim an
        article it stored; the rows themselves stay right (the insert skips existing ids).
        """
        batch = list({a.id: a for a in articles}.values())
        if not batch:
            return []
        with self.session() as s:
            known = self._known(s, [a.id for a in batch])
            inserted = [a for a in batch if a.id not in known]
            self._insert_articles(s, inserted)
        return inserted

    def _insert_articles(self, s: Session, articles: Sequence[Article]) -> None:
        if not articles:
            return
        # One prepared INSERT run for every row through the driver, each value converted by
        # its column type's own bind processor (UTCTime, NoNul: models.py), looked up once per
        # batch instead of per row as the compiled statement does (30,000 articles: 1.08-1.55
        # s that way, 0.97-1.09 s this way).
        conn = s.connection()
        table = ArticleRow.__table__  # type: ignore[attr-defined]
        binders = [
            table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
            for name in _ARTICLE_COLUMNS
        ]
        marks = ", ".join(("?" if self.is_sqlite else "%s") for _ in _ARTICLE_COLUMNS)
        sql = (
            f"INSERT INTO article ({', '.join(_ARTICLE_COLUMNS)}) VALUES ({marks}) "
            "ON CONFLICT (id) DO NOTHING"
        )
        for start in range(0, len(articles), _ROWS):
            rows = [
                tuple(
                    value if bind is None else bind(value)
                    for bind, value in zip(binders, _article_row(a), strict=True)
                )
                for a in articles[start : start + _ROWS]
            ]
            conn.exec_driver_sql(sql, rows)

    def articles(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[Article]:
        """Articles whose time falls in [since, until], oldest first."""
        stmt = select(ArticleRow)
        if since is not None:
            stmt = stmt.where(col(ArticleRow.ts) >= since)
        if until is not None:
            stmt = stmt.where(col(ArticleRow.ts) <= until)
        stmt = stmt.order_by(col(ArticleRow.ts), col(ArticleRow.id))
        with self.session() as s:
            return [_article(r) for r in s.execute(stmt).scalars()]

    def articles_by_id(self, ids: Iterable[str]) -> dict[str, Article]:
        with self.session() as s:
            return {r.id: _article(r) for r in _rows_in(s, ArticleRow, ArticleRow.id, ids)}

    def count_articles(self) -> int:
        with self.session() as s:
            return int(s.execute(select(func.count()).select_from(ArticleRow)).scalar_one())

    # -- stories ------------------------------------------------------------------------------

    def story_of_articles(self, article_ids: Iterable[str]) -> dict[str, str]:
        """article id -> id of the (live) story it belongs to, for articles already grouped."""
        ids = list(dict.fromkeys(article_ids))
        out: dict[str, str] = {}
        with self.session() as s:
            for chunk in _chunks(ids):
                stmt = (
                    select(col(StoryMemberRow.article_id), col(StoryMemberRow.story_id))
                    .join(StoryRow, col(StoryRow.id) == col(StoryMemberRow.story_id))
                    .where(col(StoryMemberRow.article_id).in_(chunk))
                    .where(col(StoryRow.merged_into).is_(None))
                )
                out.update((a, st) for a, st in s.execute(stmt).all())
        return out

    def save_stories(self, stories: Iterable[Story], merged: dict[str, str] | None = None) -> None:
        """Upsert stories and their members; ``merged`` maps an absorbed story id -> survivor.

        An article belongs to one story: listing it moves it there. Members a story is not given
        now (older articles outside the window) stay with it.
        """
        stories = list(stories)
        with self.session() as s:
            for story in stories:
                now = story.updated or story.first_seen or datetime.now(UTC)
                row = s.get(StoryRow, story.id) or StoryRow(
                    id=story.id, first_seen=now, updated=now
                )
                row.title = story.title
                row.first_seen = story.first_seen or row.first_seen
                row.updated = story.updated or row.updated
                row.category = story.category
                row.score = story.score
                parts = story.score_parts
                row.score_parts = json.dumps(asdict(parts) if parts else {}, sort_keys=True)
                row.merged_into = None
                s.add(row)
                ids = list(dict.fromkeys(story.article_ids))
                for chunk in _chunks(ids):
                    s.execute(
                        delete(StoryMemberRow).where(col(StoryMemberRow.article_id).in_(chunk))
                    )
                s.flush()
                s.add_all(StoryMemberRow(story_id=story.id, article_id=a) for a in ids)
                s.flush()
            for old, new in (merged or {}).items():
                if old == new:
                    continue
                s.execute(update(StoryRow).where(col(StoryRow.id) == old).values(merged_into=new))
                s.execute(
                    update(StoryMemberRow)
                    .where(col(StoryMemberRow.story_id) == old)
                    .values(story_id=new)
                )

    def stories(self, since: datetime | None = None, until: datetime | None = None) -> list[Story]:
        """Live stories updated within [since, until], most recently updated first."""
        stmt = select(StoryRow).where(col(StoryRow.merged_into).is_(None))
        if since is not None:
            stmt = stmt.where(col(StoryRow.updated) >= since)
        if until is not None:
            stmt = stmt.where(col(StoryRow.first_seen) <= until)
        stmt = stmt.order_by(col(StoryRow.updated).desc(), col(StoryRow.id))
        with self.session() as s:
            rows = list(s.execute(stmt).scalars())
            members: dict[str, list[tuple[datetime, str]]] = {r.id: [] for r in rows}
            ids = list(members)
            for chunk in _chunks(ids):
                mstmt = (
                    select(col(StoryMemberRow.story_id), col(ArticleRow.id), col(ArticleRow.ts))
                    .join(ArticleRow, col(ArticleRow.id) == col(StoryMemberRow.article_id))
                    .where(col(StoryMemberRow.story_id).in_(chunk))
                )
                for story_id, art_id, ts in s.execute(mstmt).all():
                    members[story_id].append((ts, art_id))
        return [
            Story(
                id=r.id,
                article_ids=tuple(a for _, a in sorted(members[r.id])),
                title=r.title,
                first_seen=r.first_seen,
                updated=r.updated,
                category=r.category,
                score_parts=_score(r.score_parts),
            )
            for r in rows
        ]

    def story(self, story_id: str) -> Story | None:
        """One story by id, a merged one's survivor when it was merged (None: no such id);
        its members in time order."""
        with self.session() as s:
            row = s.get(StoryRow, story_id)
            seen = {story_id}
            while row is not None and row.merged_into and row.merged_into not in seen:
                seen.add(row.merged_into)
                row = s.get(StoryRow, row.merged_into)
            if row is None:
                return None
            mstmt = (
                select(col(ArticleRow.ts), col(ArticleRow.id))
                .join(StoryMemberRow, col(ArticleRow.id) == col(StoryMemberRow.article_id))
                .where(col(StoryMemberRow.story_id) == row.id)
            )
            members = sorted(s.execute(mstmt).all())
        return Story(
            id=row.id,
            article_ids=tuple(article_id for _, article_id in members),
            title=row.title,
            first_seen=row.first_seen,
            updated=row.updated,
            category=row.category,
            score_parts=_score(row.score_parts),
        )

    def redirects(self, live_ids: Iterable[str]) -> dict[str, str]:
        """Every story merged into another, whose chain of merges ends at one of ``live_ids``:
        old id -> live id (a merged story's page redirects to the one that absorbed it)."""
        live = set(live_ids)
        stmt = select(col(StoryRow.id), col(StoryRow.merged_into)).where(
            col(StoryRow.merged_into).is_not(None)
        )
        with self.session() as s:
            into: dict[str, str] = {old: new for old, new in s.execute(stmt).all() if new}
        out: dict[str, str] = {}
        for old in into:
            seen, current = {old}, into[old]
            while current in into and current not in seen:  # a chain: a -> b -> c
                seen.add(current)
                current = into[current]
            if current in live:
                out[old] = current
        return out

    # -- summaries ----------------------------------------------------------------------------

    def summaries(self, story_ids: Iterable[str]) -> dict[str, Summary]:
        with self.session() as s:
            rows = _rows_in(s, SummaryRow, SummaryRow.story_id, story_ids)
            return {r.story_id: _summary(r) for r in rows}

    def save_summary(self, summary: Summary) -> None:
        sentences = json.dumps(
            [{"text": x.text, "citations": list(x.citations)} for x in summary.sentences],
            ensure_ascii=False,
        )
        with self.session() as s:
            row = s.get(SummaryRow, summary.story_id) or SummaryRow(
                story_id=summary.story_id, input_hash="", method="", created=datetime.now(UTC)
            )
            row.input_hash = summary.input_hash
            row.headline = summary.headline
            row.sentences = sentences
            row.method = summary.method
            row.model = summary.model
            row.note = summary.note
            row.items = items_to_json(summary.items)
            row.created = summary.created or datetime.now(UTC)
            s.add(row)

    # -- daily editions -----------------------------------------------------------------------

    def save_edition(self, edition: Edition) -> None:
        """Store a day's edition in place of what that day held: the day as it stands now."""
        day = edition.day.isoformat()
        with self.session() as s:
            s.execute(delete(EditionStoryRow).where(col(EditionStoryRow.day) == day))
            s.flush()
            s.add_all(
                _edition_row(day, rank, edition.published, entry)
                for rank, entry in enumerate(edition.stories, start=1)
            )

    def editions(self) -> list[Edition]:
        """Every stored edition, oldest day first, each with its stories in rank order."""
        stmt = select(EditionStoryRow).order_by(col(EditionStoryRow.day), col(EditionStoryRow.rank))
        days: dict[str, list[EditionStoryRow]] = {}
        with self.session() as s:
            for row in s.execute(stmt).scalars():
                days.setdefault(row.day, []).append(row)
        return [
            Edition(
                day=date.fromisoformat(day),
                published=max(r.published for r in rows),
                stories=tuple(_edition_story(r) for r in rows),
            )
            for day, rows in days.items()
        ]

    # -- clustering's verdicts (cluster.adjudicate) ----------------------------------------------

    def verdicts(self, keys: Iterable[str]) -> dict[str, bool]:
        """The stored "same event?" verdict of each known key."""
        with self.session() as s:
            return {r.key: r.same_event for r in _rows_in(s, VerdictRow, VerdictRow.key, keys)}

    def save_verdicts(self, verdicts: Mapping[str, bool], model: str) -> None:
        """Keep verdicts given by ``model`` (a key already stored takes the new verdict)."""
        now = datetime.now(UTC)
        with self.session() as s:
            for key, same in verdicts.items():
                row = s.get(VerdictRow, key) or VerdictRow(key=key, created=now)
                row.same_event, row.model, row.created = same, model[:200], now
                s.add(row)

    # -- upkeep: retention, vacuum, size, backup --------------------------------------------------

    def prune(self, before: datetime, *, batch: int = 5_000) -> int:
        """Drop the text, author and image of the articles whose time (published, else fetched)
        is before ``before``; their id, link, title, source and times stay, so the stories that
        list them keep their links and the crawler still knows them. The number pruned.

        One transaction per ``batch`` articles, so a first prune of years of articles never
        holds the write lock for long; with nothing to prune it is one look at a small index.
        """
        pending = (
            select(col(ArticleRow.id))
            .where(col(ArticleRow.ts) < before)
            .where(not_(col(ArticleRow.pruned)))  # the partial index ix_article_unpruned
            .limit(batch)
            .scalar_subquery()
        )
        strip = (
            update(ArticleRow)
            .where(col(ArticleRow.id).in_(pending))
            .values(text="", author="", image="", pruned=True)
        )
        total = 0
        while True:
            with self.session() as s:
                done = s.connection().execute(strip).rowcount
            total += done
            if done < batch:
                return total

    def vacuum(self) -> None:
        """Give back the space of pruned text: SQLite rewrites the file (VACUUM, then the WAL
        is emptied); PostgreSQL marks it reusable and refreshes the planner's statistics
        (VACUUM ANALYZE). Neither runs inside a transaction."""
        if self.engine.dialect.name not in ("sqlite", "postgresql"):
            raise StorageError(f"vacuum knows SQLite and PostgreSQL, not {self.engine.name}")
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                if self.is_sqlite:
                    conn.exec_driver_sql("VACUUM")
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                else:
                    conn.exec_driver_sql("VACUUM ANALYZE")
        except OperationalError as exc:
            raise StorageError(f"cannot vacuum {self._safe_url()}: {exc.orig}") from exc

    def size(self) -> int:
        """Bytes the database takes: SQLite's pages (free ones included; not the WAL), or
        PostgreSQL's pg_database_size."""
        with self.engine.connect() as conn:
            if self.is_sqlite:
                pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
                page_size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
                return int(pages) * int(page_size)
            query = "SELECT pg_database_size(current_database())"
            return int(conn.exec_driver_sql(query).scalar_one())

    def sqlite_path(self) -> Path:
        """The SQLite database's file; StorageError for another database or one in memory."""
        name = self.engine.url.database if self.is_sqlite else None
        if not name or name == ":memory:" or name.startswith("file:"):
            raise StorageError(f"{self._safe_url()} is not a SQLite database file")
        return Path(name).expanduser().resolve()

    def backup(self, target: Path) -> int:
        """Copy the SQLite database to ``target`` while other connections read and write it.

        SQLite's online backup API copies one consistent moment (in WAL mode writers are not
        held up); the copy is checked (PRAGMA integrity_check), made a self-contained file
        (no WAL), written beside ``target`` and renamed over it, so a failed backup leaves no
        half-written file. Returns the copy's size in bytes.
        """
        source = self.sqlite_path()
        target = target.expanduser().resolve()
        if target == source:
            raise StorageError(f"{target} is the database itself; name another file")
        if not target.parent.is_dir():
            raise StorageError(f"cannot back up to {target}: {target.parent} is not a folder")
        partial = target.with_name(f".{target.name}.partial")
        partial.unlink(missing_ok=True)
        try:
            with (
                closing(sqlite3.connect(source, timeout=30.0)) as src,
                closing(sqlite3.connect(partial)) as dst,
            ):
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")
                (verdict,) = dst.execute("PRAGMA integrity_check").fetchone()
            if verdict != "ok":
                raise StorageError(f"the backup of {source} failed its integrity check: {verdict}")
            os.replace(partial, target)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot back up {source} to {target}: {exc}") from exc
        finally:
            partial.unlink(missing_ok=True)
        return target.stat().st_size

    # -- operations: the editors' report (read-only) and the run lock ---------------------------

    def members_of_stories(self, story_ids: Iterable[str]) -> dict[str, list[str]]:
        """Live story id -> the ids of every member article, whatever its age."""
        ids = list(dict.fromkeys(story_ids))
        out: dict[str, list[str]] = {}
        with self.session() as s:
            for chunk in _chunks(ids):
                stmt = (
                    select(col(StoryMemberRow.story_id), col(StoryMemberRow.article_id))
                    .join(StoryRow, col(StoryRow.id) == col(StoryMemberRow.story_id))
                    .where(col(StoryMemberRow.story_id).in_(chunk))
                    .where(col(StoryRow.merged_into).is_(None))
                    .order_by(col(StoryMemberRow.story_id), col(StoryMemberRow.article_id))
                )
                for story_id, article_id in s.execute(stmt).all():
                    out.setdefault(story_id, []).append(article_id)
        return out

    @contextmanager
    def advisory_lock(self, key: int) -> Iterator[bool]:
        """PostgreSQL: try to take session advisory lock ``key`` on a connection of its own and
        hold it while the block runs; yields whether it was taken. The server drops the lock
        when that connection ends, so a killed process leaves none behind. Other databases
        have no such lock and yield True (SQLite's runs are serialised by the file lock).
        """
        if self.engine.dialect.name != "postgresql":
            yield True
            return
        from sqlalchemy.pool import NullPool

        # A pooled connection would go back to the pool, lock and all: this one is closed.
        engine = create_engine(
            self.engine.url, poolclass=NullPool, connect_args={"connect_timeout": 30}
        )
        try:
            try:
                connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                taken = connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": key}
                ).scalar_one()
            except OperationalError as exc:
                raise StorageError(
                    f"database error ({self._safe_url()}): {_first_line(exc)}"
                ) from exc
            try:
                yield bool(taken)
            finally:
                connection.close()  # ends the session, and with it the lock
        finally:
            engine.dispose()

    # -- runs ---------------------------------------------------------------------------------

    def record_run(
        self, started: datetime, finished: datetime, outcome: str, jobs: list[dict[str, Any]]
    ) -> None:
        """Keep one run's record (see RunRow); the newest RUNS_KEPT are kept."""
        with self.session() as s:
            s.add(
                RunRow(
                    started=started,
                    finished=finished,
                    outcome=outcome,
                    jobs=json.dumps(jobs, ensure_ascii=False),
                )
            )
            s.flush()
            newest = select(col(RunRow.id)).order_by(col(RunRow.id).desc()).limit(RUNS_KEPT)
            s.execute(delete(RunRow).where(col(RunRow.id).not_in(newest.scalar_subquery())))

    def last_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        """The newest runs first: started, finished, outcome and jobs, as stored."""
        stmt = select(RunRow).order_by(col(RunRow.id).desc()).limit(limit)
        with self.session() as s:
            return [
                {
                    "started": r.started,
                    "finished": r.finished,
                    "outcome": r.outcome,
                    "jobs": json.loads(r.jobs or "[]"),
                }
                for r in s.execute(stmt).scalars()
            ]

    # -- the LLM usage ledger ------------------------------------------------------------------

    def save_llm_usage(self, lines: Iterable[LLMUsageLine]) -> None:
        """Store a run's ledger rows as they stand now (a row's totals replace what it held:
        a run writes its running totals after each story, so a killed run loses one story's)."""
        now = datetime.now(UTC)
        with self.session() as s:
            for line in lines:
                key = (line.run, line.day, line.model[:200], line.purpose)
                row = s.get(LLMUsageRow, key) or LLMUsageRow(
                    run=key[0], day=key[1], model=key[2], purpose=key[3], updated=now
                )
                row.calls = line.calls
                row.prompt_tokens = line.prompt_tokens
                row.completion_tokens = line.completion_tokens
                row.cost = line.cost
                row.updated = now
                s.add(row)

    def llm_usage(
        self, since_day: str, until_day: str | None = None, *, exclude_run: str = ""
    ) -> list[LLMUsageLine]:
        """The ledger summed over runs (but ``exclude_run``) per day, model and purpose, for
        days in [since, until] (ISO dates); oldest day first. A sum's cost is None when no row
        of it had a price."""
        columns = (
            col(LLMUsageRow.day),
            col(LLMUsageRow.model),
            col(LLMUsageRow.purpose),
        )
        stmt = select(
            *columns,
            func.sum(LLMUsageRow.calls),
            func.sum(LLMUsageRow.prompt_tokens),
            func.sum(LLMUsageRow.completion_tokens),
            func.sum(LLMUsageRow.cost),
        ).where(col(LLMUsageRow.day) >= since_day)
        if until_day is not None:
            stmt = stmt.where(col(LLMUsageRow.day) <= until_day)
        if exclude_run:
            stmt = stmt.where(col(LLMUsageRow.run) != exclude_run)
        stmt = stmt.group_by(*columns).order_by(*columns)
        with self.session() as s:
            return [
                LLMUsageLine(
                    day=day,
                    model=model,
                    purpose=purpose,
                    calls=int(calls or 0),
                    prompt_tokens=int(prompt or 0),
                    completion_tokens=int(completion or 0),
                    cost=None if cost is None else float(cost),
                )
                for day, model, purpose, calls, prompt, completion, cost in s.execute(stmt).all()
            ]


def _first_line(exc: DBAPIError) -> str:
    """The driver's message without PostgreSQL's LINE/caret lines under it."""
    text = str(exc.orig).strip()
    return text.splitlines()[0] if text else type(exc.orig).__name__


def _busy(exc: OperationalError) -> bool:
    """A lock wait that timed out: SQLite's "database is locked", PostgreSQL's 55P03."""
    if isinstance(exc.orig, sqlite3.OperationalError):
        return "database is locked" in str(exc.orig)
    return getattr(exc.orig, "sqlstate", None) == "55P03"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    _write_ahead_log(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _write_ahead_log(cur: Any, wait: float = 30.0) -> None:
    """Put the file in WAL mode (once: the mode stays with the file). Switching needs the file
    to itself, and SQLite answers "database is locked" at once instead of waiting when another
    connection holds it, as when several processes open a new database together: so wait."""
    deadline = time.monotonic() + wait
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _apply_fetch(row: SourceStateRow, record: FetchRecord) -> None:
    """One fetch's effect on a source's stored state."""
    result, url = record.result, record.url
    if url is not None and row.url is not None and row.url != url:
        row.etag = row.last_modified = row.gone_url = None
        row.consecutive_failures = 0
        row.feed_ttl = None
    if url is not None:
        row.url = url
    row.last_fetched = record.now
    row.last_status = result.status.value
    row.last_http_status = result.http_status
    row.next_fetch = record.next_fetch
    if record.gone:
        row.gone_url = url or result.url
    if record.feed_ttl is not None:
        row.feed_ttl = record.feed_ttl
    if result.status is FetchStatus.ERROR:
        row.consecutive_failures = (row.consecutive_failures or 0) + 1
        row.last_error = result.error
        if record.keep_validators:
            row.etag = result.etag
            row.last_modified = result.last_modified
    else:
        row.consecutive_failures = 0
        row.last_success = record.now
        row.last_error = None
        row.gone_url = None
        if result.status is FetchStatus.OK:
            row.etag = result.etag
            row.last_modified = result.last_modified
    row.articles_total = (row.articles_total or 0) + record.new_articles


def _state(row: SourceStateRow) -> FetchState:
    return FetchState(**{f.name: getattr(row, f.name) for f in fields(FetchState)})


# The article table's columns as _article_row gives them (pruned keeps its default).
_ARTICLE_COLUMNS = ("id", "url", "guid", "source_id", "source_name", "title", "text",
                    "published", "fetched_at", "ts", "language", "author", "image", "category",
                    "weight")  # fmt: skip


def _article_row(a: Article) -> tuple[Any, ...]:
    """An article's values in _ARTICLE_COLUMNS' order, before the column types bind them."""
    fetched = a.fetched_at or datetime.now(UTC)
    return (
        a.id,
        a.url,
        a.guid,
        a.source_id,
        a.source_name,
        a.title,
        a.text,
        a.published,
        fetched,
        a.published or fetched,
        a.language[:35],
        a.author,
        a.image,
        a.category[:60],
        a.weight,
    )


def _article(r: ArticleRow) -> Article:
    return Article(
        id=r.id,
        url=r.url,
        title=r.title,
        source_id=r.source_id,
        source_name=r.source_name,
        text=r.text,
        published=r.published,
        fetched_at=r.fetched_at,
        language=r.language,
        author=r.author,
        image=r.image,
        guid=r.guid,
        category=r.category,
        weight=r.weight,
    )


def _score(stored: str | None) -> Score | None:
    """The stored Score (fields a later release added take their defaults); None if unranked."""
    parts = json.loads(stored or "{}")
    if not parts:
        return None
    known = {f.name for f in fields(Score)}
    return Score(**{k: float(v) for k, v in parts.items() if k in known})


def _summary(r: SummaryRow) -> Summary:
    return Summary(
        story_id=r.story_id,
        headline=r.headline,
        sentences=tuple(
            SummarySentence(text=x["text"], citations=tuple(x["citations"]))
            for x in json.loads(r.sentences or "[]")
        ),
        method="llm" if r.method == "llm" else "extractive",
        model=r.model,
        input_hash=r.input_hash,
        created=r.created,
        note=r.note,
        items=items_from_json(r.items),
    )


def _item_json(item: SummaryItem) -> dict[str, Any]:
    out: dict[str, Any] = {"text": item.text, "citations": list(item.citations)}
    if item.who:
        out["who"] = item.who
    if item.when:
        out["when"] = item.when
    return out


def items_to_json(items: SummaryItems) -> str:
    """The ``summary.items`` column: the lists by name, ``why_it_matters`` an item or null."""
    why = items.why_it_matters
    return json.dumps(
        {
            "talking_points": [_item_json(i) for i in items.talking_points],
            "perspectives": [_item_json(i) for i in items.perspectives],
            "timeline": [_item_json(i) for i in items.timeline],
            "why_it_matters": _item_json(why) if why is not None else None,
        },
        ensure_ascii=False,
    )


def _item(raw: dict[str, Any]) -> SummaryItem:
    return SummaryItem(
        text=str(raw.get("text", "")),
        citations=tuple(str(c) for c in raw.get("citations", ())),
        who=str(raw.get("who", "")),
        when=str(raw.get("when", "")),
    )


def items_from_json(text: str | None) -> SummaryItems:
    """What ``items_to_json`` wrote; "{}" (a summary written before items existed) is empty."""
    raw = json.loads(text or "{}")
    why = raw.get("why_it_matters")
    return SummaryItems(
        talking_points=tuple(_item(i) for i in raw.get("talking_points", ())),
        perspectives=tuple(_item(i) for i in raw.get("perspectives", ())),
        timeline=tuple(_item(i) for i in raw.get("timeline", ())),
        why_it_matters=_item(why) if why else None,
    )


def _edition_row(day: str, rank: int, published: datetime, entry: EditionStory) -> EditionStoryRow:
    story, summary = entry.story, entry.summary
    parts = story.score_parts
    when = story.updated or story.first_seen or published
    return EditionStoryRow(
        day=day,
        rank=rank,
        published=published,
        story_id=story.id,
        title=story.title,
        first_seen=story.first_seen or when,
        updated=when,
        category=story.category[:60],
        score_parts=json.dumps(asdict(parts) if parts else {}, sort_keys=True),
        article_ids=json.dumps(list(story.article_ids)),
        headline=summary.headline if summary else "",
        sentences=json.dumps(
            [{"text": x.text, "citations": list(x.citations)} for x in summary.sentences]
            if summary
            else [],
            ensure_ascii=False,
        ),
        method=summary.method if summary else "",
        image=entry.image,
    )


def _edition_story(r: EditionStoryRow) -> EditionStory:
    story = Story(
        id=r.story_id,
        article_ids=tuple(json.loads(r.article_ids or "[]")),
        title=r.title,
        first_seen=r.first_seen,
        updated=r.updated,
        category=r.category,
        score_parts=_score(r.score_parts),
    )
    summary = None
    if r.method:
        summary = Summary(
            story_id=r.story_id,
            headline=r.headline,
            sentences=tuple(
                SummarySentence(text=x["text"], citations=tuple(x["citations"]))
                for x in json.loads(r.sentences or "[]")
            ),
            method="llm" if r.method == "llm" else "extractive",
        )
    return EditionStory(story=story, summary=summary, image=r.image)
