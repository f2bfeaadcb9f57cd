"""Clustering's verdicts: an LLM's "same event?" answers, kept by the hash of what it was shown
so a rerun over the same articles asks nothing again (see cluster.adjudicate).

Revision ID: 0006_verdict
Revises: 0005_edition
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_verdict"
down_revision = "0005_edition"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "verdict",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("same_event", sa.Boolean(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("migrations go forward only: restore a backup taken before")
