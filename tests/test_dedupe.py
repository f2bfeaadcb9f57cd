"""Syndicated copies and second URLs: one entry of the story, one voice in the ranking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import feedparser

from aggregator.cluster.dedupe import duplicate_groups, originals
from aggregator.rank import rank_stories
from aggregator.records import Article, Story
from aggregator.render.pages import build_site
from aggregator.settings import Settings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WIRE = (
    "The regional parliament voted on Tuesday to close the last coal power station by 2030, "
    "after a debate that lasted more than nine hours and split the governing coalition. "
    "Supporters said the decision gives workers and towns seven years to prepare, while "
    "opponents warned of higher energy bills and asked for a detailed plan to replace the "
    "lost capacity with wind, solar and storage before any closure date is fixed in law."
)


def art(ident: str, source: str, title: str, text: str = "", minutes: int = 0) -> Article:
    return Article(
        id=ident,
        url=f"https://{source}.example/{ident}",
        title=title,
        source_id=source,
        source_name=source.title(),
        text=text,
        published=NOW - timedelta(hours=3) + timedelta(minutes=minutes),
    )


COPIES = [
    art("w1", "wire", "Parliament votes to close last coal plant by 2030", WIRE, 0),
    art("w2", "herald", "Parliament votes to close last coal plant by 2030", WIRE, 5),
    # the same wire text under a local headline, with a line added at the end
    art("w3", "courier", "Coal plant to shut by 2030", WIRE + " Local reaction follows.", 9),
]
OWN = [
    art("o1", "tribune", "Coal towns fear for jobs after closure vote",
        "Miners in the valley said they learned of the vote from their phones. " * 6, 20),
    art("o2", "gazette", "What the 2030 coal exit means for your bill",
        "Households could pay a little more in the first years, analysts said. " * 6, 30),
]  # fmt: skip


def test_copies_group_with_their_original() -> None:
    groups = duplicate_groups(COPIES + OWN)
    assert [tuple(a.id for a in g) for g in groups] == [("w1", "w2", "w3"), ("o1",), ("o2",)]
    assert originals(COPIES)["w3"].id == "w1"


def test_short_or_different_titles_do_not_collide() -> None:
    live = [art("l1", "a", "Live updates"), art("l2", "b", "Live updates")]
    assert len(duplicate_groups(live)) == 2  # too short to be sure
    assert len(duplicate_groups(OWN)) == 2


def test_text_copies_found_among_many_articles() -> None:
    # 200 distinct articles plus 30 copies of one text under other titles: every copy found
    filler = [art(f"f{i}", f"s{i}", f"Story number {i} about topic {i}",
                  " ".join(f"word{i}x{j}" for j in range(60)), i) for i in range(200)]  # fmt: skip
    copies = [art(f"c{i}", f"outlet{i}", f"Headline variant {i} for the wire story", WIRE, 300 + i)
              for i in range(30)]  # fmt: skip
    groups = duplicate_groups(filler + copies)
    assert len(groups) == 201
    assert max(len(g) for g in groups) == 30


def test_copies_count_once_toward_sources() -> None:
    members = COPIES + OWN
    story = Story(id="coal", article_ids=tuple(a.id for a in members))
    (ranked,) = rank_stories([story], {a.id: a for a in members}, NOW)
    assert ranked.score_parts.sources == 3.0  # wire, tribune, gazette
    assert ranked.score_parts.copies == 2.0
    assert ranked.score_parts.articles == 3.0


def test_page_lists_a_copy_once_naming_the_outlets_that_ran_it() -> None:
    members = COPIES + OWN
    ids = tuple(a.id for a in members)
    first, last = members[0].published, members[-1].published
    story = Story(id="coal", article_ids=ids, first_seen=first, updated=last, title="Coal exit")
    ranked = rank_stories([story], {a.id: a for a in members}, NOW)
    files = build_site(ranked, {}, {a.id: a for a in members}, Settings(), NOW)
    page = files["stories/coal.html"].decode()
    assert page.count("https://herald.example/w2") == 0  # the copy is not listed as an entry
    assert "also in Herald, Courier" in page
    assert "Sources (3)" in page
    entry = feedparser.parse(files["atom.xml"]).entries[0]
    assert "also in Herald, Courier" in entry.content[0].value
