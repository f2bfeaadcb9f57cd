"""Baseline: the tables of release 0.1.0, made on an empty database or adopted where that
release made them (it created its tables without migrations).

Adopting changes no row: a table that exists is kept as it is, apart from the source_state
columns added during 0.1.0's development (all nullable), which a database made before them lacks.
The tables are written out here, not taken from the models, so this revision stays what it was
when the models change.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def _tables() -> list[sa.Table]:
    """Release 0.1.0's tables (names, types, nullability and indexes as create_all made them)."""
    meta = sa.MetaData()
    text, time, string = sa.Text, sa.DateTime, sa.String

    def required(name: str, type_: Any) -> sa.Column[Any]:
        return sa.Column(name, type_, nullable=False)

    def optional(name: str, type_: Any) -> sa.Column[Any]:
        return sa.Column(name, type_, nullable=True)

    source_state = sa.Table(
        "source_state",
        meta,
        sa.Column("source_id", string(64), primary_key=True),
        optional("etag", text),
        optional("last_modified", text),
        optional("last_fetched", time),
        optional("last_success", time),
        optional("last_status", string(32)),
        optional("last_error", text),
        required("consecutive_failures", sa.Integer),
        required("articles_total", sa.Integer),
        optional("url", text),
        optional("next_fetch", time),
        optional("gone_url", text),
        optional("feed_ttl", sa.Float),
        optional("last_http_status", sa.Integer),
    )
    article = sa.Table(
        "article",
        meta,
        sa.Column("id", string(40), primary_key=True),
        required("url", text),
        required("guid", text),
        required("source_id", string(255)),
        required("source_name", text),
        required("title", text),
        required("text", text),
        optional("published", time),
        required("fetched_at", time),
        required("ts", time),
        required("language", string(35)),
        required("author", text),
        required("image", text),
        required("category", string(60)),
        required("weight", sa.Float),
    )
    story = sa.Table(
        "story",
        meta,
        sa.Column("id", string(40), primary_key=True),
        required("title", text),
        required("first_seen", time),
        required("updated", time),
        required("category", string(60)),
        required("score", sa.Float),
        required("score_parts", text),
        optional("merged_into", string(40)),
    )
    story_member = sa.Table(
        "story_member",
        meta,
        sa.Column("story_id", string(40), primary_key=True),
        sa.Column("article_id", string(40), primary_key=True),
    )
    summary = sa.Table(
        "summary",
        meta,
        sa.Column("story_id", string(40), primary_key=True),
        required("input_hash", string(64)),
        required("headline", text),
        required("sentences", text),
        required("method", string(20)),
        required("model", string(200)),
        required("note", text),
        required("created", time),
    )
    sa.Index("ix_article_source", article.c.source_id)  # an index joins its table
    sa.Index("ix_article_ts", article.c.ts)
    sa.Index("ix_story_updated", story.c.updated)
    sa.Index("ix_story_member_article", story_member.c.article_id)
    return [source_state, article, story, story_member, summary]


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    present = set(inspector.get_table_names())
    for table in _tables():
        if table.name not in present:
            table.create(bind)  # with its indexes
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:  # source_state's later ones, all nullable: rows stay valid
                op.add_column(table.name, sa.Column(column.name, column.type, nullable=True))


def downgrade() -> None:
    raise NotImplementedError("migrations go forward only: restore a backup taken before")
