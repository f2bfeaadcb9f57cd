"""Daily editions: edition_story keeps each day's top stories in rank order as they were
published (members, times, headline, summary sentences, lead image), so a past day's page renders
again after its stories leave the window and their articles' text is pruned.

Revision ID: 0005_edition
Revises: 0004_llm_usage
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_edition"
down_revision = "0004_llm_usage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "edition_story",
        sa.Column("day", sa.String(length=10), primary_key=True),
        sa.Column("rank", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("published", sa.DateTime(), nullable=False),
        sa.Column("story_id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.Column("category", sa.String(length=60), nullable=False),
        sa.Column("score_parts", sa.Text(), nullable=False),
        sa.Column("article_ids", sa.Text(), nullable=False),
        sa.Column("headline", sa.Text(), nullable=False),
        sa.Column("sentences", sa.Text(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("image", sa.Text(), nullable=False),
    )
    op.create_index("ix_edition_story_story", "edition_story", ["story_id"])


def downgrade() -> None:
    raise NotImplementedError("migrations go forward only: restore a backup taken before")
