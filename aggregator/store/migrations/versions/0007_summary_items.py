"""Summary items: a story's talking points, perspectives, timeline and "why it matters", each
citing its articles, stored as one JSON text beside the summary's sentences ("{}": none, as
every summary written before this revision has).

Revision ID: 0007_summary_items
Revises: 0006_verdict
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_summary_items"
down_revision = "0006_verdict"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("summary", sa.Column("items", sa.Text(), nullable=False, server_default="{}"))


def downgrade() -> None:
    raise NotImplementedError("migrations go forward only: restore a backup taken before")
