"""Story identity across runs: previous stories keep their ids, new ones get stable ids."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Mapping, Sequence

# -- stories and their ids -------------------------------------------------------------------


def assign_story_ids(
    groups: Sequence[Sequence[str]], previous: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """A story id per group (article ids, oldest first) and the map of absorbed stories.

    A previous story keeps its id on the group holding most of its members; a group takes the
    previous story with most members in it (ties: smaller id). Claims are granted greedily from
    the largest overlap down, so an id is never used twice. A group left without an id gets one
    derived from its oldest article.
    """
    overlaps = _overlaps(groups, previous)
    ids: list[str | None] = [None] * len(groups)
    taken: set[str] = set()
    for _count, story_id, index in sorted(overlaps, key=lambda o: (-o[0], o[1], o[2])):
        if ids[index] is None and story_id not in taken:
            ids[index] = story_id
            taken.add(story_id)
    avoid = taken | set(previous.values())
    final: list[str] = []
    for index, group in enumerate(groups):
        story_id = ids[index] or new_story_id(group[0], avoid)
        avoid.add(story_id)
        final.append(story_id)
    return final, _merged(overlaps, final, taken)


def _overlaps(
    groups: Sequence[Sequence[str]], previous: Mapping[str, str]
) -> list[tuple[int, str, int]]:
    """(members in common, previous story id, group index) for every overlapping pair."""
    out: list[tuple[int, str, int]] = []
    for index, group in enumerate(groups):
        counts = Counter(previous[a] for a in group if a in previous)
        out.extend((count, story_id, index) for story_id, count in counts.items())
    return out


def _merged(
    overlaps: list[tuple[int, str, int]], ids: Sequence[str], kept: set[str]
) -> dict[str, str]:
    """Previous stories that lost their id -> the story now holding most of their members."""
    best: dict[str, tuple[int, str]] = {}
    for count, story_id, index in overlaps:
        if story_id in kept:
            continue
        candidate = (-count, ids[index])
        if story_id not in best or candidate < best[story_id]:
            best[story_id] = candidate
    return {old: new for old, (_, new) in sorted(best.items())}


def new_story_id(oldest_article_id: str, avoid: Collection[str] = ()) -> str:
    """16 hex chars derived from the oldest article id; salted when that id is already in use."""
    salt = 0
    while True:
        key = f"story:{oldest_article_id}" + (f":{salt}" if salt else "")
        story_id = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        if story_id not in avoid:
            return story_id
        salt += 1
