"""The real UCI News Aggregator headlines through ingest, cluster --window all and export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from aggregator.cli.main import main


def _to_jsonl(tsv: Path, out: Path) -> int:
    """UCI rows -> the ingest shape (url, title, source, published)."""
    count = 0
    with tsv.open(newline="", encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for row in csv.DictReader(src, delimiter="\t", quoting=csv.QUOTE_NONE):
            record = {
                "url": row["url"],
                "title": row["title"],
                "source": row["publisher"],
                "published": row["published_utc"],
            }
            dst.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def test_uci_ingest_cluster_export(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tsv = shared_data / "clustering" / "uci_news_aggregator_first6k" / "articles.tsv"
    jsonl = tmp_path / "uci.jsonl"
    rows = _to_jsonl(tsv, jsonl)
    assert rows == 6366
    db = ["--db", f"sqlite:///{tmp_path / 'uci.db'}"]
    main(["ingest", str(jsonl), *db])  # a few rows share a URL: those are stored once
    stored = int(capsys.readouterr().out.split()[0])
    assert 6000 < stored <= rows
    assert main(["cluster", "--window", "all", *db]) == 0
    assert f"{stored} articles in all articles" in capsys.readouterr().out
    out = tmp_path / "stories.jsonl"
    assert main(["export", "stories", "--window", "all", "--output", str(out), *db]) == 0
    stories = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(len(s["articles"]) for s in stories) == stored  # every article in one story
    assert 40 < len(stories) < stored / 3  # grouped, not one per headline
    keys = {"id", "title", "summary", "score", "first_seen", "updated", "articles", "citations"}
    keys |= {"talking_points", "perspectives", "timeline", "why_it_matters"}
    assert all(set(s) == keys for s in stories)
    updated = [s["updated"] for s in stories]
    assert updated == sorted(updated, reverse=True)  # most recent first


def test_a_second_clustering_of_unchanged_articles_changes_nothing(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After --window all, a 24-hour clustering of the same articles minted 30 ids and retired
    3; the run after it one more: stories changed with nothing new to read."""
    tsv = shared_data / "clustering" / "uci_news_aggregator_first6k" / "articles.tsv"
    jsonl = tmp_path / "uci.jsonl"
    _to_jsonl(tsv, jsonl)
    db = ["--db", f"sqlite:///{tmp_path / 'uci.db'}"]
    assert main(["ingest", str(jsonl), *db]) == 0
    assert main(["cluster", "--window", "all", *db]) == 0
    out = tmp_path / "stories.jsonl"
    export = ["export", "stories", "--window", "all", "--output", str(out), *db]
    assert main(export) == 0
    before = out.read_text()
    capsys.readouterr()
    for hours in ("24", "24", "6", "all"):
        now = "2014-03-12T05:00:00Z"  # an hour after the newest headline
        assert main(["cluster", "--window", hours, "--now", now, *db]) == 0
        assert "(0 new, 0 merged)" in capsys.readouterr().out
        assert main(export) == 0
        assert out.read_text() == before
