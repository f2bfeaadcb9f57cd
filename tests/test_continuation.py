"""A story that continues on a later day keeps its id and feed GUID; it is never new again."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
import pytest

from aggregator.cli.main import main


def _ingest(path: Path, rows: list[dict[str, str]], *common: str) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["ingest", str(path), *common]) == 0


def _row(url: str, source: str, published: str, title: str, text: str) -> dict[str, str]:
    return {"url": url, "source": source, "published": published, "title": title, "text": text}


DAY_ONE = [
    _row("https://a.example/dam-1", "Alpha", "2026-11-20T08:00:00Z",
         "Engineers lower reservoir after cracks found in Kessel dam wall",
         "Engineers began lowering the Kessel reservoir after cracks were found in the dam wall."),
    _row("https://b.example/dam", "Beta", "2026-11-20T09:00:00Z",
         "Kessel dam wall cracks: reservoir lowered as a precaution",
         "The Kessel reservoir is being lowered after cracks appeared in the dam wall."),
    _row("https://c.example/vote", "Gamma", "2026-11-20T10:00:00Z",
         "City council approves new cycling lanes on the ring road",
         "The city council voted to build protected cycling lanes on the ring road."),
]  # fmt: skip

DAY_THREE = [
    _row("https://a.example/dam-2", "Alpha", "2026-11-22T07:00:00Z",
         "Kessel dam wall cracks: repairs begin as reservoir reaches safe level",
         "Repairs to the cracks in the Kessel dam wall began once the reservoir was lowered."),
    _row("https://d.example/festival", "Delta", "2026-11-22T08:00:00Z",
         "Winter light festival opens with record crowds",
         "The winter light festival opened with record crowds on the harbour front."),
]  # fmt: skip


def test_story_continues_across_days(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "sources.yaml"
    cfg.write_text("settings:\n  site_url: https://news.example.org/\nsources: []\n")
    common = ["--config", str(cfg), "--db", db_url]
    _ingest(tmp_path / "one.jsonl", DAY_ONE, *common)
    assert main(["run", "--no-crawl", *common, "--now", "2026-11-20T12:00:00Z"]) == 0
    atom = tmp_path / "site" / "atom.xml"
    day_one = {e.title: e.id for e in feedparser.parse(atom.read_bytes()).entries}
    dam_id = next(i for t, i in day_one.items() if "Kessel" in t)

    # two days later the day-one articles are outside the 24 h window; the dam story goes on
    _ingest(tmp_path / "three.jsonl", DAY_THREE, *common)
    capsys.readouterr()
    assert main(["run", "--no-crawl", *common, "--now", "2026-11-22T12:00:00Z"]) == 0
    assert "2 articles -> 2 stories (1 new)" in capsys.readouterr().out
    entries = feedparser.parse(atom.read_bytes()).entries
    dam = next(e for e in entries if "Kessel" in e.title)
    assert dam.id == dam_id  # the same story, updated, not a new item
    assert dam.updated_parsed[:3] == (2026, 11, 22)
    assert dam.published_parsed[:3] == (2026, 11, 20)  # first seen on day one
    assert main(["export", "stories", *common, "--window", "all"]) == 0
    stories = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    dam_story = next(s for s in stories if any("dam" in a["url"] for a in s["articles"]))
    assert {a["url"] for a in dam_story["articles"]} == {
        "https://a.example/dam-1",
        "https://b.example/dam",
        "https://a.example/dam-2",
    }
    assert len(stories) == 3  # dam, cycling lanes, festival: nothing duplicated
