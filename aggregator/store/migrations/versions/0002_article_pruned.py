"""Retention: article.pruned marks an article whose text, author and image were dropped after
settings.retention_days (its id, link, title, source and times stay, so the stories and feeds
that list it keep working and the crawler still knows it). The partial index holds only the
articles not pruned yet, so looking for the next ones to prune costs nothing when there are none.

Revision ID: 0002_article_pruned
Revises: 0001_baseline
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_article_pruned"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "article",
        sa.Column("pruned", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_article_unpruned",
        "article",
        ["ts"],
        sqlite_where=sa.text("pruned = 0"),  # as SQLAlchemy writes "not pruned" for SQLite
        postgresql_where=sa.text("NOT pruned"),
    )


def downgrade() -> None:
    raise NotImplementedError("migrations go forward only: restore a backup taken before")
