"""Summary items: a story's talking points, perspectives, timeline and "why it matters", each
citing its articles, stored as one JSON text beside the summary's sentences ("{}": none, as
every summary written before this revision has).

Revision ID: 0006_summary_items
Revises: 0004_llm_usage
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_summary_items"
down_revision = "0004_llm_usage"  # the merger re-chains this after 0004_edition/0005
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("summary", sa.Column("items", sa.Text(), nullable=False, server_default="{}"))


def downgrade() -> None:
    raise NotImplementedError("migrations go forward only: restore a backup taken before")
