"""The LLM usage ledger: calls, prompt and completion tokens and cost per run, local day, model
and purpose, which the daily budget reads and ``aggregator status`` shows.

Revision ID: 0004_llm_usage
Revises: 0003_run
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_llm_usage"
down_revision = "0003_run"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "llm_usage",
        sa.Column("run", sa.String(length=32), primary_key=True),
        sa.Column("day", sa.String(length=10), primary_key=True),
        sa.Column("model", sa.String(length=200), primary_key=True),
        sa.Column("purpose", sa.String(length=20), primary_key=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("updated", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_llm_usage_day", "llm_usage", ["day"])


def downgrade() -> None:
    raise NotImplementedError("migrations go forward only: restore a backup taken before")
