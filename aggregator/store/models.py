"""SQLModel tables. Times are aware UTC in Python, naive UTC in the database (see UTCTime)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, Text
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


def _time(nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UTCTime, nullable=nullable)


class SourceStateRow(SQLModel, table=True):
    """Fetch state per source: validators for conditional GET and health."""

    __tablename__ = "source_state"

    source_id: str = Field(primary_key=True, max_length=64)
    etag: str | None = Field(default=None, sa_column=Column(Text))
    last_modified: str | None = Field(default=None, sa_column=Column(Text))
    last_fetched: datetime | None = _time()
    last_success: datetime | None = _time()
    last_status: str | None = Field(default=None, max_length=32)
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    consecutive_failures: int = 0
    articles_total: int = 0
    # Added after the first release: nullable, so Storage can add them to an existing table.
    url: str | None = Field(default=None, sa_column=Column(Text))  # the URL this state is for
    next_fetch: datetime | None = _time()  # not fetched again before this (interval, backoff)
    gone_url: str | None = Field(default=None, sa_column=Column(Text))  # answered 410 Gone here
    feed_ttl: float | None = None  # seconds the feed says it stays fresh (<ttl>, sy:update*)
    last_http_status: int | None = None


class ArticleRow(SQLModel, table=True):
    """One article, stored exactly once (id = hash of its canonical URL or GUID)."""

    __tablename__ = "article"
    __table_args__ = (Index("ix_article_ts", "ts"), Index("ix_article_source", "source_id"))

    id: str = Field(primary_key=True, max_length=40)
    url: str = Field(sa_column=Column(Text, nullable=False))
    guid: str = Field(default="", sa_column=Column(Text, nullable=False))
    source_id: str = Field(max_length=255)
    source_name: str = Field(default="", sa_column=Column(Text, nullable=False))
    title: str = Field(default="", sa_column=Column(Text, nullable=False))
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    published: datetime | None = _time()
    fetched_at: datetime = _time(nullable=False)
    ts: datetime = _time(nullable=False)  # published, else fetched_at: windows and recency
    language: str = Field(default="", max_length=35)
    author: str = Field(default="", sa_column=Column(Text, nullable=False))
    image: str = Field(default="", sa_column=Column(Text, nullable=False))
    category: str = Field(default="", max_length=60)
    weight: float = 1.0


class StoryRow(SQLModel, table=True):
    """A story: stable id, timing, rank; members in story_member."""

    __tablename__ = "story"
    __table_args__ = (Index("ix_story_updated", "updated"),)

    id: str = Field(primary_key=True, max_length=40)
    title: str = Field(default="", sa_column=Column(Text, nullable=False))
    first_seen: datetime = _time(nullable=False)
    updated: datetime = _time(nullable=False)
    category: str = Field(default="", max_length=60)
    score: float = 0.0
    score_parts: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    merged_into: str | None = Field(default=None, max_length=40)  # redirect after a merge


class StoryMemberRow(SQLModel, table=True):
    __tablename__ = "story_member"
    __table_args__ = (Index("ix_story_member_article", "article_id"),)

    story_id: str = Field(primary_key=True, max_length=40)
    article_id: str = Field(primary_key=True, max_length=40)


class SummaryRow(SQLModel, table=True):
    """The current summary of a story, keyed by the hash of what it was written from."""

    __tablename__ = "summary"

    story_id: str = Field(primary_key=True, max_length=40)
    input_hash: str = Field(max_length=64)
    headline: str = Field(default="", sa_column=Column(Text, nullable=False))
    sentences: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON
    method: str = Field(max_length=20)
    model: str = Field(default="", max_length=200)
    note: str = Field(default="", sa_column=Column(Text, nullable=False))
    created: datetime = _time(nullable=False)
