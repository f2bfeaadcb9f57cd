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

MIN_TITLE_WORDS = 5  # shorter titles ("Live updates") collide by chance
SHINGLE_WORDS = 5  # words per shingle
MIN_TEXT_WORDS = 40  # texts shorter than this are compared by title only
TEXT_WORDS = 400  # the lead compared: copies share it even when one has a longer tail
SAME_TEXT = 0.8  # Jaccard of the leads' shingles for two texts to be copies
MINHASH_SALTS = (0x0, 0x5BD1E995, 0x27D4EB2F, 0x165667B1)

_WORD = re.compile(r"\w+", re.UNICODE)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def title_key(title: str) -> str | None:
    """The title's words, lowercased: equal keys are the same headline."""
    words = _words(title)
    return " ".join(words) if len(words) >= MIN_TITLE_WORDS else None


def shingles(text: str) -> frozenset[int]:
    """Hashed word 5-grams of the text's lead (empty for short texts)."""
    words = _words(text)[:TEXT_WORDS]
    if len(words) < MIN_TEXT_WORDS:
        return frozenset()
    return frozenset(
        zlib.crc32(" ".join(words[i : i + SHINGLE_WORDS]).encode())
        for i in range(len(words) - SHINGLE_WORDS + 1)
    )


def duplicate_groups(articles: Sequence[Article]) -> list[tuple[Article, ...]]:
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
        key = title_key(article.title)
        if key is not None:
            join(index, by_title.setdefault(key, index))
    # Texts: only pairs sharing a min-hash are compared. Copies (Jaccard >= 0.8) share one of
    # the MINHASH_SALTS minima with probability 1 - 0.2 ** 4, about 99.8 %.
    bags = [shingles(a.text) for a in ordered]
    buckets: dict[tuple[int, int], list[int]] = {}
    for index, bag in enumerate(bags):
        if bag:
            for band, salt in enumerate(MINHASH_SALTS):
                buckets.setdefault((band, min(h ^ salt for h in bag)), []).append(index)
    for members in buckets.values():
        for pos, i in enumerate(members):
            for j in members[pos + 1 :]:
                if find(i) != find(j) and _jaccard(bags[i], bags[j]) >= SAME_TEXT:
                    join(i, j)
    groups: dict[int, list[Article]] = {}
    for index, article in enumerate(ordered):
        groups.setdefault(find(index), []).append(article)
    return [tuple(group) for _, group in sorted(groups.items())]


def _jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def originals(articles: Sequence[Article]) -> dict[str, Article]:
    """Article id -> the original (earliest) article of its duplicate group."""
    return {a.id: group[0] for group in duplicate_groups(articles) for a in group}
