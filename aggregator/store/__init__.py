"""Storage: the only module that speaks SQL (SQLite by default, PostgreSQL for scale)."""

from aggregator.store.storage import FetchState, Storage, StorageError

__all__ = ["FetchState", "Storage", "StorageError"]
