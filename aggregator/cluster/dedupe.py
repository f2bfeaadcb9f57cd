"""Near-duplicate articles inside a story: syndicated wire copies, one article under two URLs.

A group of copies is one entry of its story (the earliest is the original, the rest are listed
with it) and one voice when counting sources. Pure, and linear in the story's size apart from
the text comparison among articles that share a text fingerprint band.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

from aggregator.records import Article
from aggregator.settings import ClusterParams

# how long a title or a text must be, and how alike two texts, are ClusterParams' dedupe_*
MINHASH_SALTS = (0x0, 0x5BD1E995, 0x27D4EB2F, 0x165667B1)

_WORD = re.compile(r"\w+", re.UNICODE)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def title_key(title: str, params: ClusterParams) -> str | None:
    """The title's words, lowercased: equal keys are the same headline (None: too short)."""
    words = _words(title)
    return " ".join(words) if len(words) >= params.dedupe_min_title_words else None


def shingles(text: str, params: ClusterParams) -> frozenset[int]:
    """Hashed word n-grams of the text's lead (empty for short texts)."""
    words = _words(text)[: params.dedupe_text_words]
    if len(words) < params.dedupe_min_text_words:
        return frozenset()
    size = params.dedupe_shingle_words
    return frozenset(
        zlib.crc32(" ".join(words[i : i + size]).encode()) for i in range(len(words) - size + 1)
    )


def duplicate_groups(
    articles: Sequence[Article], params: ClusterParams = ClusterParams()
) -> list[tuple[Article, ...]]:
    """Articles grouped with their copies, each group oldest first, groups by first article."""
    ordered = sorted(articles, key=lambda a: (a.timestamp, a.id))
    parent = list(range(len(ordered)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)  # the older article stays the root

    by_title: dict[str, int] = {}
    for index, article in enumerate(ordered):
        key = title_key(article.title, params)
        if key is not None:
            join(index, by_title.setdefault(key, index))
    # Texts: only pairs sharing a min-hash are compared. Copies (Jaccard >= J, the
    # dedupe_same_text) share one of the MINHASH_SALTS minima with probability 1 - (1 - J) ** 4.
    bags = [shingles(a.text, params) for a in ordered]
    buckets: dict[tuple[int, int], list[int]] = {}
    for index, bag in enumerate(bags):
        if bag:
            for band, salt in enumerate(MINHASH_SALTS):
                buckets.setdefault((band, min(h ^ salt for h in bag)), []).append(index)
    for members in buckets.values():
        for pos, i in enumerate(members):
            for j in members[pos + 1 :]:
                if find(i) != find(j) and _jaccard(bags[i], bags[j]) >= params.dedupe_same_text:
                    join(i, j)
    groups: dict[int, list[Article]] = {}
    for index, article in enumerate(ordered):
        groups.setdefault(find(index), []).append(article)
    return [tuple(group) for _, group in sorted(groups.items())]


def _jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def originals(
    articles: Sequence[Article], params: ClusterParams = ClusterParams()
) -> dict[str, Article]:
    """Article id -> the original (earliest) article of its duplicate group."""
    return {a.id: group[0] for group in duplicate_groups(articles, params) for a in group}
