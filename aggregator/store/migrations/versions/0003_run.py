"""Run records: each run of the pipeline leaves a row (when, how it went, each job's times,
counts and error), which ``aggregator status`` shows beside the sources' health.

Revision ID: 0003_run
Revises: 0002_article_pruned
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_run"
down_revision = "0002_article_pruned"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("started", sa.DateTime(), nullable=False),
        sa.Column("finished", sa.DateTime(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("jobs", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("migrations go forward only: restore a backup taken before")
