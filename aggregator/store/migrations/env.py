"""Alembic's entry point for the shipped migrations.

The service runs them from code (``aggregator.store.migrate``), which hands over its connection,
locked and inside its transaction. For developers the alembic command line works from the
repository root (pyproject.toml's ``[tool.alembic]``) on ``-x db=URL`` or ``AGGREGATOR_DB_URL``:

    alembic -x db=sqlite:///scratch.db upgrade head
    alembic -x db=sqlite:///scratch.db revision --autogenerate -m "what changes"
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlmodel import SQLModel

import aggregator.store.models  # noqa: F401  (registers the tables autogenerate compares)


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying
    )
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    url = context.get_x_argument(as_dictionary=True).get("db") or os.environ.get(
        "AGGREGATOR_DB_URL"
    )
    if not url:
        raise SystemExit("name the database: alembic -x db=URL ... (or set AGGREGATOR_DB_URL)")
    with create_engine(url).connect() as connection:
        run(connection)
