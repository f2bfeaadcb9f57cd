"""Storage: the tables (``models``) and the one Storage class (``storage``), the only SQL of the
project (SQLite by default, PostgreSQL for scale)."""

from aggregator.store.storage import Storage

__all__ = ["Storage"]
