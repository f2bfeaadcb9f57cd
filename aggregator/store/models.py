"""SQLModel tables. Times are aware UTC in Python, naive UTC in the database (see UTCTime);
text never carries a NUL character into either database (see NoNul).

The schema is made and changed by the migrations in ``migrations/versions/`` (never by
``create_all``): a change here needs a new migration, and tests/test_migrations.py fails until
the migrated schema matches these tables again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, String, Text, false, text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC out; stored as naive UTC so SQLite and PostgreSQL agree."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class NoNul(TypeDecorator[str]):
    """Text with NUL characters dropped on the way in: PostgreSQL refuses them (one bad line
    would fail a whole batch) and SQLite keeps them, so both store the same thing without."""

    impl: type[String] = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return value.replace("\x00", "") if value and "\x00" in value else value


class NoNulString(NoNul):
    """NoNul for a column of bounded length: ``NoNulString(64)``."""

    impl = String
    cache_ok = True


def _text(default: Any = "", nullable: bool = False) -> Any:
    return Field(default=default, sa_column=Column(NoNul, nullable=nullable))


def _string(length: int, default: Any = "", **column: Any) -> Any:
    return Field(default=default, max_length=length, sa_type=NoNulString(length), **column)


def _time(nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UTCTime, nullable=nullable)


class SourceStateRow(SQLModel, table=True):
    """Fetch state per source: validators for conditional GET and health."""

    __tablename__ = "source_state"

    source_id: str = _string(64, ..., primary_key=True)
    etag: str | None = _text(None, nullable=True)
    last_modified: str | None = _text(None, nullable=True)
    last_fetched: datetime | None = _time()
    last_success: datetime | None = _time()
    last_status: str | None = _string(32, None, nullable=True)
    last_error: str | None = _text(None, nullable=True)
    consecutive_failures: int = 0
    articles_total: int = 0
    # Added during 0.1.0's development (migration 0001 adds them to a table made before):
    url: str | None = _text(None, nullable=True)  # the URL this state is for
    next_fetch: datetime | None = _time()  # not fetched again before this (interval, backoff)
    gone_url: str | None = _text(None, nullable=True)  # answered 410 Gone here
    feed_ttl: float | None = None  # seconds the feed says it stays fresh (<ttl>, sy:update*)
    last_http_status: int | None = None


class ArticleRow(SQLModel, table=True):
    """One article, stored exactly once (id = hash of its canonical URL or GUID)."""

    __tablename__ = "article"
    __table_args__ = (
        Index("ix_article_ts", "ts"),
        Index("ix_article_source", "source_id"),
        # only the articles not pruned yet: finding the next to prune reads just these
        Index(
            "ix_article_unpruned",
            "ts",
            sqlite_where=text("pruned = 0"),  # as SQLAlchemy writes "not pruned" for SQLite
            postgresql_where=text("NOT pruned"),
        ),
    )

    id: str = _string(40, ..., primary_key=True)
    url: str = _text(...)
    guid: str = _text("")
    source_id: str = _string(255, ...)
    source_name: str = _text("")
    title: str = _text("")
    text: str = _text("")
    published: datetime | None = _time()
    fetched_at: datetime = _time(nullable=False)
    ts: datetime = _time(nullable=False)  # published, else fetched_at: windows and recency
    language: str = _string(35)
    author: str = _text("")
    image: str = _text("")
    category: str = _string(60)
    weight: float = 1.0
    # text, author and image dropped after settings.retention_days; id, link, title, source and
    # times kept, so stories listing it stay whole and the crawler still knows it
    pruned: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class StoryRow(SQLModel, table=True):
    """A story: stable id, timing, rank; members in story_member."""

    __tablename__ = "story"
    __table_args__ = (Index("ix_story_updated", "updated"),)

    id: str = _string(40, ..., primary_key=True)
    title: str = _text("")
    first_seen: datetime = _time(nullable=False)
    updated: datetime = _time(nullable=False)
    category: str = _string(60)
    score: float = 0.0
    score_parts: str = _text("{}")  # JSON
    merged_into: str | None = _string(40, None, nullable=True)  # redirect after a merge


class StoryMemberRow(SQLModel, table=True):
    __tablename__ = "story_member"
    __table_args__ = (Index("ix_story_member_article", "article_id"),)

    story_id: str = _string(40, ..., primary_key=True)
    article_id: str = _string(40, ..., primary_key=True)


class SummaryRow(SQLModel, table=True):
    """The current summary of a story, keyed by the hash of what it was written from."""

    __tablename__ = "summary"

    story_id: str = _string(40, ..., primary_key=True)
    input_hash: str = _string(64, ...)
    headline: str = _text("")
    sentences: str = _text("[]")  # JSON
    method: str = _string(20, ...)
    model: str = _string(200)
    note: str = _text("")
    created: datetime = _time(nullable=False)
    items: str = _text("{}")  # JSON: talking points, perspectives, timeline, why it matters


class RunRow(SQLModel, table=True):
    """One run of the pipeline (``aggregator run`` or a job of the daemon): when, how it went,
    and each job's times, counts and error as JSON."""

    __tablename__ = "run"

    id: int | None = Field(default=None, primary_key=True)
    started: datetime = _time(nullable=False)
    finished: datetime = _time(nullable=False)
    outcome: str = _string(20, ...)
    jobs: str = _text("[]")  # JSON: [{job, outcome, started, finished, counts, error}]


class LLMUsageRow(SQLModel, table=True):
    """The usage ledger: what one run's LLM calls spent on one local day (settings.timezone),
    for one model and purpose; the daily budget sums a day's rows (see records.LLMUsageLine)."""

    __tablename__ = "llm_usage"
    __table_args__ = (Index("ix_llm_usage_day", "day"),)

    run: str = _string(32, ..., primary_key=True)  # LLMClient.run_id
    day: str = _string(10, ..., primary_key=True)  # "2026-12-03"
    model: str = _string(200, ..., primary_key=True)
    purpose: str = _string(20, ..., primary_key=True)  # "summary", "ask"
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None  # from settings.llm.prices; None: no price for the model
    updated: datetime = _time(nullable=False)


class EditionStoryRow(SQLModel, table=True):
    """One story of a day's edition, in rank order, as it was published: enough to render that
    day's page again after its stories leave the window and their articles are pruned."""

    __tablename__ = "edition_story"
    __table_args__ = (Index("ix_edition_story_story", "story_id"),)

    day: str = _string(10, ..., primary_key=True)  # YYYY-MM-DD in settings.timezone
    rank: int = Field(primary_key=True)  # 1 for the top story
    published: datetime = _time(nullable=False)  # the render that left the day as it is
    story_id: str = _string(40, ...)
    title: str = _text("")
    first_seen: datetime = _time(nullable=False)
    updated: datetime = _time(nullable=False)
    category: str = _string(60)
    score_parts: str = _text("{}")  # JSON, as StoryRow's
    article_ids: str = _text("[]")  # JSON: the members then, oldest first
    headline: str = _text("")  # the summary's headline then ("" without a summary)
    sentences: str = _text("[]")  # JSON, as SummaryRow's
    method: str = _string(20)  # the summary's method then ("" without a summary)
    image: str = _text("")  # URL of the lead image shown then


class VerdictRow(SQLModel, table=True):
    """An LLM's answer to "do these two groups of articles report one event?" (clustering's
    adjudication), keyed by the hash of what it was shown: a rerun asks nothing again."""

    __tablename__ = "verdict"

    key: str = _string(64, ..., primary_key=True)  # cluster.adjudicate.verdict_key
    same_event: bool = Field(default=False, nullable=False)
    model: str = _string(200)
    created: datetime = _time(nullable=False)
