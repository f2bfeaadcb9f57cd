"""What a story page shows beyond its summary: the coverage grouped by outlet, the order in
which the reports came, and related stories among those published beside it.

Everything here is computed from the story views themselves (already escaped-safe plain text),
so it adds no query and no trust: a related story is one whose headline and summary share
enough distinctive words with this one's, or failing that a top story of the same channel.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.render.views import SourceView, StoryView, TimeView

UPDATE_GAP = timedelta(minutes=30)  # reports closer than this to a moment's first belong to it
RELATED = 3  # related stories per page
MIN_SIMILARITY = 0.12  # cosine of idf-weighted words below which stories are not "related"
_WORD = re.compile(r"\w{3,}", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class OutletCoverage:
    """One outlet's articles in a story, earliest first."""

    name: str
    articles: tuple[SourceView, ...]


@dataclass(frozen=True)
class Update:
    """One moment the story grew: the outlets whose reports came then (within UPDATE_GAP of
    the moment's first)."""

    time: TimeView
    outlets: tuple[str, ...]
    articles: int


@dataclass(frozen=True)
class StoryPageExtras:
    """What the story page adds to the story's view."""

    outlets: tuple[OutletCoverage, ...]  # in the order the outlets first reported
    history: tuple[Update, ...]  # first report, then each later moment; () when only one
    related: tuple[StoryView, ...]


def _when(source: SourceView) -> str:
    # RFC 3339 UTC strings sort in time order; an article without a time goes last
    return source.time.iso if source.time is not None else "~"


def by_outlet(view: StoryView) -> tuple[OutletCoverage, ...]:
    """The story's articles grouped by outlet; outlets in the order they first reported."""
    groups: dict[str, list[SourceView]] = {}
    for source in sorted(view.sources, key=lambda s: (_when(s), s.number)):
        groups.setdefault(source.source_name, []).append(source)
    return tuple(OutletCoverage(name, tuple(items)) for name, items in groups.items())


def history(view: StoryView) -> tuple[Update, ...]:
    """The moments the story grew, earliest first: reports less than UPDATE_GAP after a
    moment's first report belong to it. () while there is one moment only."""
    dated = sorted(
        (s for s in view.sources if s.time is not None), key=lambda s: (_when(s), s.number)
    )
    moments: list[list[SourceView]] = []
    for source in dated:
        assert source.time is not None
        at = datetime.fromisoformat(source.time.iso)
        if moments:
            began = moments[-1][0].time
            assert began is not None
            if at - datetime.fromisoformat(began.iso) < UPDATE_GAP:
                moments[-1].append(source)
                continue
        moments.append([source])
    if len(moments) < 2:
        return ()
    return tuple(
        Update(
            time=group[0].time,  # type: ignore[arg-type]  # dated: every time is set
            outlets=tuple(dict.fromkeys(s.source_name for s in group)),
            articles=len(group),
        )
        for group in moments
    )


def _terms(view: StoryView) -> Counter[str]:
    text = " ".join([view.headline, *(s.text for s in view.sentences)]).lower()
    words = [w for w in _WORD.findall(text) if not w.isdigit()]
    words += _CJK.findall(text)  # Chinese and Japanese: characters, not words
    return Counter(words)


def related_stories(views: Sequence[StoryView]) -> dict[str, tuple[StoryView, ...]]:
    """Per story (by view name), up to RELATED others: the most similar by idf-weighted words
    of headline and summary above MIN_SIMILARITY, then the channel's top stories."""
    terms = {v.name: _terms(v) for v in views}
    df: Counter[str] = Counter()
    for counts in terms.values():
        df.update(counts.keys())
    n = len(views)
    idf = {w: math.log((1 + n) / (1 + d)) + 1 for w, d in df.items()}
    vectors: dict[str, dict[str, float]] = {}
    for name, counts in terms.items():
        vec = {w: c * idf[w] for w, c in counts.items()}
        norm = math.sqrt(sum(x * x for x in vec.values())) or 1.0
        vectors[name] = {w: x / norm for w, x in vec.items()}
    out: dict[str, tuple[StoryView, ...]] = {}
    for view in views:
        mine = vectors[view.name]
        scored = []
        for other in views:
            if other.name == view.name:
                continue
            theirs = vectors[other.name]
            small, large = (mine, theirs) if len(mine) <= len(theirs) else (theirs, mine)
            score = sum(x * large.get(w, 0.0) for w, x in small.items())
            if score >= MIN_SIMILARITY:
                scored.append((-score, other.name, other))
        picked = [other for _, _, other in sorted(scored, key=lambda t: (t[0], t[1]))][:RELATED]
        if len(picked) < RELATED and view.category_slug:
            for other in views:  # in rank order
                if len(picked) >= RELATED:
                    break
                same = other.category_slug == view.category_slug
                if same and other.name != view.name and other not in picked:
                    picked.append(other)
        out[view.name] = tuple(picked)
    return out


def page_extras(views: Mapping[str, StoryView]) -> dict[str, StoryPageExtras]:
    """The extras of every story page, by view name; ``views`` in rank order."""
    related = related_stories(list(views.values()))
    return {
        name: StoryPageExtras(by_outlet(view), history(view), related[name])
        for name, view in views.items()
    }
